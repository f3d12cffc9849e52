//! Who may ask: the caller's bearer token is authenticated with a TokenReview and the caller is
//! authorized with a SubjectAccessReview on a virtual resource of `rolegate.dev` in the account's
//! namespace, the way kube-rbac-proxy and metrics-server delegate to the API server. Both answers
//! are cached for a short time, as the API server's delegating authenticator and authorizer do
//! (10 s by default), so a caller's token or RBAC revoked upstream stops working within that.
//!
//! Tokens are never kept: the authentication cache is keyed by an HMAC-SHA256 of the token under a
//! key drawn at start (as the API server's cached token authenticator does).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::metrics::{DelegateCacheLabels, Metrics};

/// How long an authenticated token is trusted without asking again.
pub const AUTHN_TTL: Duration = Duration::from_secs(10);
/// How long a refused token stays refused without asking again.
pub const AUTHN_REFUSED_TTL: Duration = Duration::from_secs(10);
/// How long a SubjectAccessReview's answer (either way) is reused.
pub const AUTHZ_TTL: Duration = Duration::from_secs(10);
/// Entries kept per cache; beyond it, expired entries go, then all.
pub const CACHE_ENTRIES: usize = 16_384;

/// The virtual resources the decision API is authorized on (no CRD serves them).
pub const CHECKS: &str = "checks";
pub const LOOKUPS: &str = "lookups";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the API server did not answer the {what}: {source}")]
    Api {
        what: &'static str,
        source: kube::Error,
    },
}

/// An authenticated caller, as the TokenReview names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    pub username: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A small map whose entries expire.
struct Ttl<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq, V: Clone> Ttl<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K, now: Instant) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(until, _)| *until > now)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, value: V, ttl: Duration, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (now + ttl, value));
    }
}

/// The authorization question: may `caller` `create` `resource` in `namespace`?
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Question {
    caller: Caller,
    namespace: String,
    resource: &'static str,
}

/// TokenReviews and SubjectAccessReviews, cached.
pub struct Delegate {
    client: Client,
    hmac: ring::hmac::Key,
    authn: Ttl<[u8; 32], Option<Caller>>,
    authz: Ttl<Question, bool>,
}

impl Delegate {
    pub fn new(client: Client) -> Self {
        let rng = ring::rand::SystemRandom::new();
        // SystemRandom fails only without an OS random source; a fixed key then still hides
        // tokens from a reader of memory that lacks the process's other secrets.
        let hmac = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"rolegate"));
        Self {
            client,
            hmac,
            authn: Ttl::new(),
            authz: Ttl::new(),
        }
    }

    fn record(metrics: &Metrics, cache: &str, hit: bool) {
        metrics
            .decision_cache
            .get_or_create(&DelegateCacheLabels {
                cache: cache.to_owned(),
                result: if hit { "hit" } else { "miss" }.to_owned(),
            })
            .inc();
    }

    /// Who the token belongs to; `None` when the API server does not accept it.
    pub async fn authenticate(
        &self,
        token: &str,
        metrics: &Metrics,
    ) -> Result<Option<Caller>, Error> {
        let mut key = [0u8; 32];
        key.copy_from_slice(ring::hmac::sign(&self.hmac, token.as_bytes()).as_ref());
        if let Some(known) = self.authn.get(&key, Instant::now()) {
            Self::record(metrics, "authentication", true);
            return Ok(known);
        }
        Self::record(metrics, "authentication", false);
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|source| Error::Api {
                what: "TokenReview",
                source,
            })?;
        let status = answer.status.unwrap_or_default();
        let caller = status
            .user
            .filter(|_| status.authenticated == Some(true))
            .and_then(|u| {
                Some(Caller {
                    username: u.username.filter(|n| !n.is_empty())?,
                    uid: u.uid,
                    groups: u.groups.unwrap_or_default(),
                    extra: u.extra.unwrap_or_default(),
                })
            });
        let ttl = if caller.is_some() {
            AUTHN_TTL
        } else {
            AUTHN_REFUSED_TTL
        };
        self.authn.put(key, caller.clone(), ttl, Instant::now());
        Ok(caller)
    }

    /// Whether Kubernetes RBAC (or whatever authorizes the API server) lets `caller` `create` the
    /// virtual `resource` of `rolegate.dev` in `namespace`.
    pub async fn authorize(
        &self,
        caller: &Caller,
        namespace: &str,
        resource: &'static str,
        metrics: &Metrics,
    ) -> Result<bool, Error> {
        let question = Question {
            caller: caller.clone(),
            namespace: namespace.to_owned(),
            resource,
        };
        if let Some(known) = self.authz.get(&question, Instant::now()) {
            Self::record(metrics, "authorization", true);
            return Ok(known);
        }
        Self::record(metrics, "authorization", false);
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(caller.username.clone()),
                uid: caller.uid.clone(),
                groups: Some(caller.groups.clone()),
                extra: Some(caller.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(crate::api::GROUP.to_owned()),
                    resource: Some(resource.to_owned()),
                    verb: Some("create".to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|source| Error::Api {
                what: "SubjectAccessReview",
                source,
            })?;
        let allowed = answer
            .status
            .is_some_and(|s| s.allowed && s.denied != Some(true));
        self.authz.put(question, allowed, AUTHZ_TTL, Instant::now());
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let ttl: Ttl<u32, bool> = Ttl::new();
        let now = Instant::now();
        ttl.put(1, true, Duration::from_secs(10), now);
        assert_eq!(ttl.get(&1, now), Some(true));
        assert_eq!(ttl.get(&1, now + Duration::from_secs(11)), None);
        for i in 0..(CACHE_ENTRIES as u32 + 10) {
            ttl.put(i, false, Duration::from_secs(10), now);
        }
        let len = ttl.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(len <= CACHE_ENTRIES, "{len}");
    }
}
