use kube::CustomResourceExt;
fn main() {
    for c in rolegate::api::crds() { println!("---\n{}", serde_yaml::to_string(&c).unwrap()); }
    let _ = rolegate::api::Account::crd();
}
