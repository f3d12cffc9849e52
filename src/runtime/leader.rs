//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! writes status. It follows client-go's `leaderelection` package: a 15 s lease, renewed every 2 s,
//! given up when it could not be renewed for 10 s (the renew deadline, shorter than the lease so a
//! replica stops before another may start); expiry judged by the *local* time at which this
//! replica last saw the record change, never by the holder's `renewTime` (clocks differ between
//! nodes); released on shutdown so a successor takes over at its next retry. Optimistic
//! concurrency on the Lease's resourceVersion decides races.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// client-go's defaults (and controller-runtime's).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a holder's lease lasts after this replica last saw it change.
    pub lease: Duration,
    /// A leader that could not renew for this long stops leading. Shorter than `lease`.
    pub renew_deadline: Duration,
    /// Between attempts to acquire or renew.
    pub retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// The record as this replica last saw it, and when (local monotonic clock).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: String,
    renew_time: Option<String>,
    transitions: i32,
    duration: Duration,
}

#[derive(Debug, Default)]
pub struct Observer {
    seen: Option<(Record, Instant)>,
}

impl Observer {
    /// Notes the record read at `now`: the clock restarts only when the record changed.
    fn observe(&mut self, record: Record, now: Instant) {
        if self.seen.as_ref().is_none_or(|(r, _)| *r != record) {
            self.seen = Some((record, now));
        }
    }

    /// May `identity` take or keep the lease at `now`? Free (no holder), ours, or not seen to
    /// change for a whole lease duration of local time.
    fn may_take(&self, identity: &str, now: Instant) -> bool {
        match &self.seen {
            None => true,
            Some((record, at)) => {
                record.holder.is_empty()
                    || record.holder == identity
                    || now.duration_since(*at) >= record.duration
            }
        }
    }
}

fn record_of(spec: &LeaseSpec, default: Duration) -> Record {
    Record {
        holder: spec.holder_identity.clone().unwrap_or_default(),
        renew_time: spec.renew_time.as_ref().map(|t| t.0.to_string()),
        transitions: spec.lease_transitions.unwrap_or(0),
        duration: spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(default, Duration::from_secs),
    }
}

pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    observer: Mutex<Observer>,
}

impl Elector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            observer: Mutex::new(Observer::default()),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, lease = %self.name, "leader election failed; retrying")
                }
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Renews the lease every retry period until it cannot: returns when leadership is lost
    /// (another holder, or no successful renewal within the renew deadline).
    pub async fn hold(&self) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry).await;
            let left = self.timing.renew_deadline.saturating_sub(renewed.elapsed());
            match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => renewed = Instant::now(),
                Ok(Ok(false)) => return,
                Ok(Err(error)) => {
                    tracing::warn!(%error, lease = %self.name, "lease renewal failed")
                }
                Err(_) => {}
            }
            if renewed.elapsed() >= self.timing.renew_deadline {
                tracing::warn!(lease = %self.name, "could not renew the lease within the renew deadline");
                return;
            }
        }
    }

    /// Gives the lease up if this replica holds it (empty holder, as client-go's
    /// `ReleaseOnCancel`), so that another replica takes it at its next retry, not a lease later.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }

    /// One attempt: take the lease if it is free, expired (by local observation) or ours.
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let seconds = i32::try_from(self.timing.lease.as_secs()).unwrap_or(15);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        {
            let mut observer = self.observer.lock().await;
            observer.observe(record_of(spec, self.timing.lease), Instant::now());
            if !observer.may_take(&self.identity, Instant::now()) {
                return Ok(false);
            }
        }
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        // `replace` carries the resourceVersion we read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                if let Some(spec) = written.spec.as_ref() {
                    let mut observer = self.observer.lock().await;
                    observer.observe(record_of(spec, self.timing.lease), Instant::now());
                }
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A default identity unique per process, as controller-runtime does (host name plus a random
/// suffix): two replicas started without `POD_NAME` must never share one and both lead.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rolegate".to_owned());
    format!("{host}_{}", random_suffix())
}

/// Eight hex digits from the std library's per-process random hash keys, the pid and the clock.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(t.as_nanos());
    }
    format!("{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str, renew: &str) -> Record {
        Record {
            holder: holder.to_owned(),
            renew_time: Some(renew.to_owned()),
            transitions: 0,
            duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn another_holder_expires_a_lease_of_local_time_after_its_record_last_changed() {
        let t0 = Instant::now();
        let mut o = Observer::default();
        // The holder's renewTime could be a day in the past (a skewed clock): it does not matter.
        o.observe(record("a", "2000-01-01T00:00:00Z"), t0);
        assert!(!o.may_take("b", t0 + Duration::from_secs(14)));
        // A renewal seen at 10 s restarts the clock.
        o.observe(
            record("a", "2000-01-01T00:00:10Z"),
            t0 + Duration::from_secs(10),
        );
        assert!(!o.may_take("b", t0 + Duration::from_secs(20)));
        // The same record read again does not.
        o.observe(
            record("a", "2000-01-01T00:00:10Z"),
            t0 + Duration::from_secs(20),
        );
        assert!(o.may_take("b", t0 + Duration::from_secs(25)));
    }

    #[test]
    fn a_renew_time_in_the_future_does_not_extend_the_lease() {
        let t0 = Instant::now();
        let mut o = Observer::default();
        o.observe(record("a", "2999-01-01T00:00:00Z"), t0);
        assert!(o.may_take("b", t0 + Duration::from_secs(15)));
    }

    #[test]
    fn a_released_or_own_lease_may_be_taken_at_once() {
        let t0 = Instant::now();
        let mut o = Observer::default();
        o.observe(record("", "2000-01-01T00:00:00Z"), t0);
        assert!(o.may_take("b", t0));
        o.observe(record("b", "2000-01-01T00:00:01Z"), t0);
        assert!(o.may_take("b", t0));
        assert!(!o.may_take("c", t0));
    }

    #[test]
    fn the_renew_deadline_is_shorter_than_the_lease() {
        let t = Timing::default();
        assert!(t.renew_deadline < t.lease);
        assert!(t.retry < t.renew_deadline);
    }

    #[test]
    fn default_identities_differ_between_processes_and_calls() {
        let a = default_identity();
        let b = default_identity();
        assert_ne!(a, b);
        assert!(a.contains('_'), "{a}");
    }

    /// The API server takes the requests but never answers: the leader gives up at the renew
    /// deadline (10 s), well before another replica may take the lease (15 s), instead of hanging
    /// in a request while someone else leads.
    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_renewals_hang_stops_at_the_renew_deadline() {
        type Req = http::Request<kube::client::Body>;
        type Resp = http::Response<kube::client::Body>;
        let (service, mut handle) = tower_test::mock::pair::<Req, Resp>();
        let elector = Elector::new(
            Client::new(service, "default"),
            "default",
            "rolegate",
            "me",
            Timing::default(),
        );
        let started = Instant::now();
        let mut hold = tokio::spawn(async move {
            elector.hold().await;
            Instant::now()
        });
        let mut unanswered = Vec::new();
        let stopped = loop {
            tokio::select! {
                request = handle.next_request() => match request {
                    Some(pending) => unanswered.push(pending),
                    None => break hold.await.expect("hold"),
                },
                stopped = &mut hold => break stopped.expect("hold"),
            }
        };
        assert!(!unanswered.is_empty(), "hold never tried to renew");
        assert_eq!(stopped - started, Timing::default().renew_deadline);
    }
}
