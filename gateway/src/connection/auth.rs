//! What a connection is logged in as: AUTH, HELLO's AUTH option, NOAUTH before login, and
//! the ACL check every command passes. The group's users come with the routes, so a user
//! changed through the admin API takes effect on the next command; a deleted user's
//! connections are closed, as Redis closes them on ACL DELUSER.

use std::sync::Arc;

use bytes::Bytes;
use ferrocache_common::command::{CommandSpec, Flag};
use ferrocache_common::Reply;

use super::Session;
use crate::acl::errors;

/// What the next command finds.
pub enum Login {
    Ok,
    /// The user was deleted, or lost access to a channel it subscribes to (as Redis, the
    /// connection closes).
    Gone,
}

impl Session {
    /// Follows changes to the group's users (cheap unless the routes changed).
    pub fn refresh_acl(&mut self, group: &str) -> Login {
        let version = self.shared.router.version();
        if version == self.acl_version {
            return Login::Ok;
        }
        self.acl_version = version;
        let acl = match self.shared.router.table().groups.get(group) {
            Some(g) => g.acl.clone(),
            None => return Login::Ok,
        };
        if Arc::ptr_eq(&acl, &self.acl) {
            return Login::Ok;
        }
        self.acl = acl;
        match self.user.as_ref().map(|u| u.name.clone()) {
            Some(name) => match self.acl.user(&name) {
                Some(u) => {
                    let u = u.clone();
                    if !self.subscriptions_allowed(&u) {
                        return Login::Gone;
                    }
                    self.set_user(Some(u));
                }
                None => return Login::Gone,
            },
            // Redis asks for AUTH only while the default user needs a password.
            None => {
                let initial = self.acl.initial_user();
                self.set_user(initial);
            }
        }
        Login::Ok
    }

    /// Whether `user` may keep every subscription this connection holds.
    fn subscriptions_allowed(&self, user: &ferrocache_common::acl::User) -> bool {
        use crate::pubsub::Kind;
        let Some(subs) = self.subs.as_ref() else { return true };
        [(Kind::Channel, "subscribe"), (Kind::Pattern, "psubscribe"), (Kind::Shard, "ssubscribe")].iter().all(
            |(kind, command)| {
                let Some(spec) = ferrocache_common::command::lookup(command.as_bytes()) else { return true };
                subs.names(*kind).into_iter().all(|name| {
                    let args = [Bytes::from_static(command.as_bytes()), name];
                    user.check(spec, &args).is_ok()
                })
            },
        )
    }

    pub(super) fn set_user(&mut self, user: Option<Arc<ferrocache_common::acl::User>>) {
        self.unrestricted = user.as_ref().is_some_and(|u| u.unrestricted());
        let name = user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
        self.update(|c| c.user = name);
        self.user = user;
    }

    /// NOAUTH before login; NOPERM (logged in ACL LOG) for what the user may not run.
    pub fn authorize(&mut self, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Reply> {
        if spec.has(Flag::NoAuth) {
            return Ok(());
        }
        let Some(user) = &self.user else {
            return Err(Reply::error(errors::NOAUTH));
        };
        if self.unrestricted {
            return Ok(());
        }
        user.check(spec, args).map_err(|denied| {
            let (reason, object) = denied.reason();
            let context = if self.tx.in_multi() { "multi" } else { "toplevel" };
            let client = self.info().line(None);
            self.acl_log.lock().record(reason, context, object, user.name.clone(), client);
            Reply::error(format!("NOPERM {}", denied.message(&user.name)))
        })
    }

    /// Logs in as `name` (AUTH and HELLO ... AUTH); WRONGPASS leaves the login unchanged.
    pub fn login(&mut self, name: &[u8], password: &[u8]) -> Result<(), Reply> {
        let name = String::from_utf8_lossy(name).into_owned();
        match self.acl.authenticate(&name, password) {
            Some(u) => {
                self.set_user(Some(u));
                Ok(())
            }
            None => {
                let client = self.info().line(None);
                self.acl_log.lock().record("auth", "toplevel", "AUTH".into(), name, client);
                Err(Reply::error(errors::WRONGPASS))
            }
        }
    }

    /// AUTH [username] password.
    pub fn auth(&mut self, args: &[Bytes]) -> Reply {
        let result = match args.len() {
            2 => {
                let default_open = self.acl.user("default").is_some_and(|u| u.nopass && u.passwords.is_empty());
                if default_open {
                    return Reply::error(errors::NO_PASSWORD_SET);
                }
                self.login(b"default", &args[1])
            }
            3 => self.login(&args[1], &args[2]),
            _ => return Reply::error("ERR syntax error"),
        };
        match result {
            Ok(()) => Reply::ok(),
            Err(e) => e,
        }
    }

    /// RESET logs out: back to `default` when it needs no password.
    pub fn logout(&mut self) {
        let initial = self.acl.initial_user();
        self.set_user(initial);
    }

    /// Whether the group has a user of this name.
    pub fn user_exists(&self, name: &str) -> bool {
        self.acl.user(name).is_some()
    }

    /// The user the connection is logged in as, if any.
    pub fn user(&self) -> Option<&Arc<ferrocache_common::acl::User>> {
        self.user.as_ref()
    }
}
