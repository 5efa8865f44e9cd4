//! Who may connect to a group: ElastiCache's RBAC users and user groups, and a group's AUTH
//! tokens. Passwords and tokens are kept only as SHA-256 hashes (what Redis's ACL keeps).
//!
//! What a gateway enforces is derived here ([`Topology::acl_users`]): a group with user
//! groups gets their users; a group with tokens gets a `default` user whose passwords are
//! the tokens; any other group gets Redis's default user (no password, everything allowed).

use serde::{Deserialize, Serialize};

use super::{Outcome, Rejection, ReplicationGroup, Topology};

/// The built-in user every deployment has (as ElastiCache's `default` user).
pub const DEFAULT_USER_ID: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// What clients give to AUTH.
    pub name: String,
    pub access_string: String,
    /// SHA-256 (lowercase hex) of each password.
    pub password_hashes: Vec<String>,
    pub no_password: bool,
    pub created_ms: i64,
}

impl User {
    /// ElastiCache's built-in `default` user: no password, everything allowed.
    pub fn builtin_default() -> User {
        User {
            id: DEFAULT_USER_ID.into(),
            name: "default".into(),
            access_string: "on ~* &* +@all".into(),
            password_hashes: Vec::new(),
            no_password: true,
            created_ms: 0,
        }
    }

    /// The ACL rules a gateway builds this user from.
    pub fn acl_rules(&self) -> Vec<String> {
        let mut rules: Vec<String> = if self.no_password {
            vec!["nopass".into()]
        } else {
            self.password_hashes.iter().map(|h| format!("#{h}")).collect()
        };
        rules.extend(self.access_string.split_whitespace().map(String::from));
        rules
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroup {
    pub id: String,
    pub user_ids: Vec<String>,
    pub created_ms: i64,
}

/// ModifyReplicationGroup's AuthTokenUpdateStrategy, with the new token's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthTokenUpdate {
    /// The token becomes the only one.
    Set(String),
    /// The token is accepted beside the newest current one.
    Rotate(String),
    /// No token any more.
    Delete,
}

/// A user's changes (ModifyUser); `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    pub access_string: Option<String>,
    pub password_hashes: Option<Vec<String>>,
    pub no_password: Option<bool>,
}

impl Topology {
    /// A user by id (the built-in `default` unless replaced).
    pub fn user(&self, id: &str) -> Option<User> {
        match self.users.get(id) {
            Some(u) => Some(u.clone()),
            None if id == DEFAULT_USER_ID => Some(User::builtin_default()),
            None => None,
        }
    }

    /// Every user, the built-in `default` first.
    pub fn all_users(&self) -> Vec<User> {
        let mut out = Vec::with_capacity(self.users.len() + 1);
        if !self.users.contains_key(DEFAULT_USER_ID) {
            out.push(User::builtin_default());
        }
        out.extend(self.users.values().cloned());
        out
    }

    pub fn user_groups_of(&self, user_id: &str) -> Vec<String> {
        self.user_groups
            .values()
            .filter(|ug| ug.user_ids.iter().any(|u| u == user_id))
            .map(|ug| ug.id.clone())
            .collect()
    }

    pub fn groups_using(&self, user_group_id: &str) -> Vec<String> {
        self.groups
            .values()
            .filter(|g| g.user_group_ids.iter().any(|u| u == user_group_id))
            .map(|g| g.id.clone())
            .collect()
    }

    /// The ACL users a gateway enforces for `g`, as (name, rules). Empty: Redis's default.
    pub fn acl_users(&self, g: &ReplicationGroup) -> Vec<(String, Vec<String>)> {
        if !g.user_group_ids.is_empty() {
            let mut out: Vec<(String, Vec<String>)> = Vec::new();
            for ug in g.user_group_ids.iter().filter_map(|id| self.user_groups.get(id)) {
                for u in ug.user_ids.iter().filter_map(|id| self.user(id)) {
                    // Names are unique per group: the first user group that names one wins.
                    if !out.iter().any(|(n, _)| *n == u.name) {
                        out.push((u.name.clone(), u.acl_rules()));
                    }
                }
            }
            return out;
        }
        if !g.auth_tokens.is_empty() {
            let mut rules = vec!["on".to_string()];
            rules.extend(g.auth_tokens.iter().map(|h| format!("#{h}")));
            rules.extend(["~*", "&*", "+@all"].map(String::from));
            return vec![("default".into(), rules)];
        }
        Vec::new()
    }

    /// A user group must name a user called `default`: what clients that never AUTH get.
    fn has_default_user(&self, user_ids: &[String]) -> bool {
        user_ids.iter().filter_map(|id| self.user(id)).any(|u| u.name == "default")
    }

    pub(super) fn create_user(&mut self, user: User) -> Outcome {
        if self.user(&user.id).is_some() {
            return Outcome::Rejected(Rejection::UserExists(user.id));
        }
        self.event(user.created_ms, "user", &user.id, format!("User {} created (user name {})", user.id, user.name));
        self.users.insert(user.id.clone(), user);
        Outcome::Ok
    }

    pub(super) fn modify_user(&mut self, id: String, update: UserUpdate, at_ms: i64) -> Outcome {
        if id == DEFAULT_USER_ID && !self.users.contains_key(&id) {
            return Outcome::Rejected(Rejection::BuiltinUser);
        }
        let Some(u) = self.users.get_mut(&id) else { return Outcome::Rejected(Rejection::UserNotFound(id)) };
        if let Some(a) = update.access_string {
            u.access_string = a;
        }
        if let Some(p) = update.password_hashes {
            u.password_hashes = p;
            u.no_password = false;
        }
        if let Some(n) = update.no_password {
            u.no_password = n;
            if n {
                u.password_hashes.clear();
            }
        }
        self.event(at_ms, "user", &id, format!("User {id} modified"));
        Outcome::Ok
    }

    pub(super) fn delete_user(&mut self, id: String, at_ms: i64) -> Outcome {
        if id == DEFAULT_USER_ID && !self.users.contains_key(&id) {
            return Outcome::Rejected(Rejection::BuiltinUser);
        }
        if !self.users.contains_key(&id) {
            return Outcome::Rejected(Rejection::UserNotFound(id));
        }
        if let Some(ug) = self.user_groups_of(&id).into_iter().next() {
            return Outcome::Rejected(Rejection::UserInUse(id, ug));
        }
        self.users.remove(&id);
        self.event(at_ms, "user", &id, format!("User {id} deleted"));
        Outcome::Ok
    }

    pub(super) fn create_user_group(&mut self, group: UserGroup) -> Outcome {
        if self.user_groups.contains_key(&group.id) {
            return Outcome::Rejected(Rejection::UserGroupExists(group.id));
        }
        if let Some(missing) = group.user_ids.iter().find(|u| self.user(u).is_none()) {
            return Outcome::Rejected(Rejection::UserNotFound(missing.clone()));
        }
        if !self.has_default_user(&group.user_ids) {
            return Outcome::Rejected(Rejection::NoDefaultUser(group.id));
        }
        let msg = format!("User group {} created with users {}", group.id, group.user_ids.join(", "));
        self.event(group.created_ms, "user-group", &group.id, msg);
        self.user_groups.insert(group.id.clone(), group);
        Outcome::Ok
    }

    pub(super) fn modify_user_group(
        &mut self,
        id: String,
        add: Vec<String>,
        remove: Vec<String>,
        at_ms: i64,
    ) -> Outcome {
        let Some(current) = self.user_groups.get(&id) else {
            return Outcome::Rejected(Rejection::UserGroupNotFound(id));
        };
        if let Some(missing) = add.iter().find(|u| self.user(u).is_none()) {
            return Outcome::Rejected(Rejection::UserNotFound(missing.clone()));
        }
        let mut users: Vec<String> = current.user_ids.iter().filter(|u| !remove.contains(u)).cloned().collect();
        for u in add {
            if !users.contains(&u) {
                users.push(u);
            }
        }
        if !self.has_default_user(&users) {
            return Outcome::Rejected(Rejection::NoDefaultUser(id));
        }
        let msg = format!("User group {id} modified: users {}", users.join(", "));
        if let Some(ug) = self.user_groups.get_mut(&id) {
            ug.user_ids = users;
        }
        self.event(at_ms, "user-group", &id, msg);
        Outcome::Ok
    }

    pub(super) fn delete_user_group(&mut self, id: String, at_ms: i64) -> Outcome {
        if !self.user_groups.contains_key(&id) {
            return Outcome::Rejected(Rejection::UserGroupNotFound(id));
        }
        if let Some(g) = self.groups_using(&id).into_iter().next() {
            return Outcome::Rejected(Rejection::UserGroupInUse(id, g));
        }
        self.user_groups.remove(&id);
        self.event(at_ms, "user-group", &id, format!("User group {id} deleted"));
        Outcome::Ok
    }
}

/// Applies a token update and user group changes to a group; `Err` leaves it unchanged.
pub(super) fn apply_group_access(
    topology: &Topology,
    g: &mut ReplicationGroup,
    token: Option<AuthTokenUpdate>,
    add: &[String],
    remove: &[String],
    at_ms: i64,
    said: &mut Vec<String>,
) -> Result<(), Rejection> {
    if let Some(missing) = add.iter().find(|u| !topology.user_groups.contains_key(*u)) {
        return Err(Rejection::UserGroupNotFound(missing.clone()));
    }
    let mut tokens = g.auth_tokens.clone();
    match &token {
        Some(AuthTokenUpdate::Set(h)) => tokens = vec![h.clone()],
        Some(AuthTokenUpdate::Rotate(h)) => {
            // Two at most: the newest current token and the new one.
            let keep = tokens.pop();
            tokens = keep.into_iter().chain(std::iter::once(h.clone())).collect();
            tokens.dedup();
        }
        Some(AuthTokenUpdate::Delete) => tokens.clear(),
        None => {}
    }
    let mut user_groups: Vec<String> = g.user_group_ids.iter().filter(|u| !remove.contains(u)).cloned().collect();
    for u in add {
        if !user_groups.contains(u) {
            user_groups.push(u.clone());
        }
    }
    if !tokens.is_empty() && !user_groups.is_empty() {
        return Err(Rejection::AuthConflict(g.id.clone()));
    }
    match token {
        Some(AuthTokenUpdate::Set(_)) => said.push("AUTH token set".into()),
        Some(AuthTokenUpdate::Rotate(_)) => said.push("AUTH token rotated (old and new accepted)".into()),
        Some(AuthTokenUpdate::Delete) => said.push("AUTH token removed".into()),
        None => {}
    }
    if token.is_some() {
        g.auth_token_modified_ms = at_ms;
    }
    if user_groups != g.user_group_ids {
        said.push(format!("user groups [{}]", user_groups.join(", ")));
    }
    g.auth_tokens = tokens;
    g.user_group_ids = user_groups;
    Ok(())
}
