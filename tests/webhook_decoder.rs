//! Fuzzing the AdmissionReview decoder with proptest: arbitrary bytes, arbitrary JSON, and
//! well-formed reviews carrying arbitrary objects never panic, and every outcome is a review with a
//! response or a 4xx rejection.

mod support;

use proptest::prelude::*;
use rolegate::metrics::Metrics;
use rolegate::state::Shared;
use rolegate::webhook::review;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-zA-Z0-9:/._-]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("kind".to_owned()),
                    Just("metadata".to_owned()),
                    Just("spec".to_owned()),
                    Just("name".to_owned()),
                    Just("account".to_owned()),
                    Just("member".to_owned()),
                    Just("role".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn fixture() -> (Shared, Metrics) {
    let shared = Shared::default();
    shared.load(support::owned_account());
    (shared, Metrics::default())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (shared, metrics) = fixture();
        let _ = review::handle(&shared, &metrics, &bytes);
    }

    #[test]
    fn arbitrary_objects_in_a_valid_review_get_a_response(
        kind in prop_oneof![Just("Account"), Just("Member"), Just("Role"), Just("RoleBinding")],
        operation in prop_oneof![Just("CREATE"), Just("UPDATE"), Just("DELETE"), Just("CONNECT")],
        object in json_value(),
        old in json_value(),
    ) {
        let (shared, metrics) = fixture();
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"group": "rolegate.dev", "version": "v1alpha1", "kind": kind},
                "resource": {"group": "rolegate.dev", "version": "v1alpha1", "resource": "x"},
                "name": "n",
                "namespace": "default",
                "operation": operation,
                "userInfo": {"username": "someone"},
                "object": object,
                "oldObject": old,
            }
        });
        match review::handle(&shared, &metrics, &serde_json::to_vec(&body).expect("json")) {
            Ok(review) => {
                let response = review.response.expect("a review always carries a response");
                prop_assert_eq!(response.uid, "u");
            }
            Err(rejection) => prop_assert!(matches!(rejection, review::Rejection::Malformed(_))),
        }
    }
}
