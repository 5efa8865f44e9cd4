//! Authentication and ACL enforcement on the gateway: each group's users (from the
//! coordinators' topology), what a connection is logged in as, and the check every command
//! passes before it is routed.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrocache_common::acl::User;
use ferrocache_proto::internal::v1 as pb;

pub mod command;
pub mod log;

pub use log::AclLog;

/// A group's users, by name.
#[derive(Debug)]
pub struct Acl {
    users: BTreeMap<String, Arc<User>>,
    /// What they were built from, to reuse an unchanged table.
    source: Vec<pb::AclUser>,
}

impl Default for Acl {
    fn default() -> Acl {
        Acl::build(Vec::new())
    }
}

impl Acl {
    fn build(source: Vec<pb::AclUser>) -> Acl {
        let mut users = BTreeMap::new();
        for u in &source {
            match User::from_rules(&u.name, &u.rules) {
                Ok(user) => {
                    users.insert(u.name.clone(), Arc::new(user));
                }
                // The coordinators check every rule first; a rule this gateway does not know
                // (a newer version's) leaves the user out rather than granting too much.
                Err((rule, e)) => tracing::warn!(user = %u.name, "ACL rule '{rule}' refused: {e}; user left out"),
            }
        }
        // Redis always has a `default` user; when the group names none, it is disabled
        // (every client must AUTH as a named user).
        users
            .entry("default".into())
            .or_insert_with(|| Arc::new(if source.is_empty() { User::default_user() } else { User::new("default") }));
        Acl { users, source }
    }

    /// The group's users, reusing `previous` when nothing changed (the topology is resent
    /// often; rebuilding would change nothing but cost hashing).
    pub fn from_proto(source: Vec<pb::AclUser>, previous: Option<&Arc<Acl>>) -> Arc<Acl> {
        match previous {
            Some(p) if p.source == source => p.clone(),
            _ => Arc::new(Acl::build(source)),
        }
    }

    pub fn user(&self, name: &str) -> Option<&Arc<User>> {
        self.users.get(name)
    }

    pub fn users(&self) -> impl Iterator<Item = &Arc<User>> {
        self.users.values()
    }

    /// Whom a new connection is logged in as: `default` when it needs no password, else
    /// nobody (every command but AUTH/HELLO/QUIT answers NOAUTH).
    pub fn initial_user(&self) -> Option<Arc<User>> {
        self.users.get("default").filter(|u| u.enabled && u.nopass).cloned()
    }

    /// AUTH: the user `name` if `password` logs in as it.
    pub fn authenticate(&self, name: &str, password: &[u8]) -> Option<Arc<User>> {
        self.users.get(name).filter(|u| u.password_ok(password)).cloned()
    }
}

/// Redis's errors for authentication.
pub mod errors {
    pub const NOAUTH: &str = "NOAUTH Authentication required.";
    pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
    pub const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
    pub const NO_PASSWORD_SET: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
}
