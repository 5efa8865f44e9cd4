//! RBAC in the admin API: users and user groups, checked here and applied through Raft.

use ferrocache_common::acl::{hash_password, parse_access_string};
use ferrocache_common::ids::{validate_id, validate_secret};
use ferrocache_common::time::now_ms;
use ferrocache_proto::admin::v1 as admin;
use tonic::Status;

use super::admin::{rejection, AdminService};
use super::requests::{combination, invalid};
use crate::topology::{Change, Outcome, Rejection, Topology, User, UserGroup, UserUpdate};

fn user_view(u: &User, topology: &Topology) -> admin::User {
    admin::User {
        user_id: u.id.clone(),
        user_name: u.name.clone(),
        status: "active".into(),
        engine: "redis".into(),
        access_string: u.access_string.clone(),
        user_group_ids: topology.user_groups_of(&u.id),
        authentication: Some(admin::Authentication {
            r#type: if u.no_password { "no-password" } else { "password" }.into(),
            password_count: u.password_hashes.len() as i32,
        }),
        minimum_engine_version: "6.0".into(),
    }
}

fn user_group_view(ug: &UserGroup, topology: &Topology) -> admin::UserGroup {
    admin::UserGroup {
        user_group_id: ug.id.clone(),
        status: "active".into(),
        engine: "redis".into(),
        user_ids: ug.user_ids.clone(),
        replication_groups: topology.groups_using(&ug.id),
        minimum_engine_version: "6.0".into(),
    }
}

fn engine(e: &str) -> Result<(), Status> {
    match e.to_ascii_lowercase().as_str() {
        "" | "redis" | "valkey" => Ok(()),
        other => Err(invalid(format!("Engine must be redis or valkey, got '{other}'"))),
    }
}

fn id(what: &str, id: &str) -> Result<String, Status> {
    let id = id.to_ascii_lowercase();
    validate_id(what, &id).map_err(invalid)?;
    Ok(id)
}

fn passwords(list: &[String]) -> Result<Vec<String>, Status> {
    if list.len() > 2 {
        return Err(invalid("a user has at most two passwords"));
    }
    list.iter().map(|p| validate_secret("Passwords", p).map(|_| hash_password(p.as_bytes())).map_err(invalid)).collect()
}

fn access(s: &str) -> Result<String, Status> {
    parse_access_string(s).map(|rules| rules.join(" ")).map_err(invalid)
}

fn user_ids(ids: &[String]) -> Result<Vec<String>, Status> {
    let mut out: Vec<String> = Vec::new();
    for u in ids {
        let u = id("UserId", u)?;
        if !out.contains(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

impl AdminService {
    async fn propose_access(&self, change: Change) -> Result<std::sync::Arc<Topology>, Status> {
        match self.coordinator.propose(change).await? {
            Outcome::Rejected(r) => Err(rejection(r)),
            _ => Ok(self.coordinator.topology().topology),
        }
    }

    pub(super) async fn do_create_user(&self, req: admin::CreateUserRequest) -> Result<admin::User, Status> {
        let user_id = id("UserId", &req.user_id)?;
        engine(&req.engine)?;
        let name = req.user_name.clone();
        if name.is_empty() || name.len() > 128 || !name.bytes().all(|c| (b'!'..=b'~').contains(&c)) {
            return Err(invalid("UserName must be 1 to 128 printable ASCII characters without spaces"));
        }
        let password_hashes = passwords(&req.passwords)?;
        match (req.no_password_required, password_hashes.is_empty()) {
            (true, false) => return Err(combination("Passwords and NoPasswordRequired cannot be used together")),
            (false, true) => return Err(invalid("Passwords (or NoPasswordRequired) is required")),
            _ => {}
        }
        let user = User {
            id: user_id.clone(),
            name,
            access_string: access(&req.access_string)?,
            password_hashes,
            no_password: req.no_password_required,
            created_ms: now_ms(),
        };
        let topology = self.propose_access(Change::CreateUser { user }).await?;
        let u = topology.user(&user_id).ok_or_else(|| rejection(Rejection::UserNotFound(user_id)))?;
        Ok(user_view(&u, &topology))
    }

    pub(super) async fn do_modify_user(&self, req: admin::ModifyUserRequest) -> Result<admin::User, Status> {
        let user_id = id("UserId", &req.user_id)?;
        let current = self.coordinator.linearizable().await?;
        let Some(u) = current.user(&user_id) else { return Err(rejection(Rejection::UserNotFound(user_id))) };
        let mut update = UserUpdate::default();
        if !req.access_string.is_empty() && !req.append_access_string.is_empty() {
            return Err(combination("AccessString and AppendAccessString cannot be used together"));
        }
        if !req.access_string.is_empty() {
            update.access_string = Some(access(&req.access_string)?);
        }
        if !req.append_access_string.is_empty() {
            update.access_string = Some(access(&format!("{} {}", u.access_string, req.append_access_string))?);
        }
        if !req.passwords.is_empty() {
            if req.no_password_required == Some(true) {
                return Err(combination("Passwords and NoPasswordRequired cannot be used together"));
            }
            update.password_hashes = Some(passwords(&req.passwords)?);
        }
        if req.no_password_required == Some(false) && req.passwords.is_empty() && u.password_hashes.is_empty() {
            return Err(invalid("a user that requires a password needs Passwords"));
        }
        update.no_password = req.no_password_required;
        let topology = self.propose_access(Change::ModifyUser { id: user_id.clone(), update, at_ms: now_ms() }).await?;
        let u = topology.user(&user_id).ok_or_else(|| rejection(Rejection::UserNotFound(user_id)))?;
        Ok(user_view(&u, &topology))
    }

    pub(super) async fn do_delete_user(&self, req: admin::DeleteUserRequest) -> Result<admin::User, Status> {
        let user_id = id("UserId", &req.user_id)?;
        let before = self.coordinator.linearizable().await?;
        let u = before.user(&user_id).ok_or_else(|| rejection(Rejection::UserNotFound(user_id.clone())))?;
        let topology = self.propose_access(Change::DeleteUser { id: user_id, at_ms: now_ms() }).await?;
        let mut view = user_view(&u, &topology);
        view.status = "deleting".into();
        Ok(view)
    }

    pub(super) async fn do_describe_users(
        &self,
        req: admin::DescribeUsersRequest,
    ) -> Result<admin::DescribeUsersResponse, Status> {
        let topology = self.coordinator.linearizable().await?;
        let wanted = req.user_id.to_ascii_lowercase();
        if !wanted.is_empty() && topology.user(&wanted).is_none() {
            return Err(rejection(Rejection::UserNotFound(wanted)));
        }
        let users = topology
            .all_users()
            .iter()
            .filter(|u| wanted.is_empty() || u.id == wanted)
            .map(|u| user_view(u, &topology))
            .collect();
        Ok(admin::DescribeUsersResponse { users })
    }

    pub(super) async fn do_create_user_group(
        &self,
        req: admin::CreateUserGroupRequest,
    ) -> Result<admin::UserGroup, Status> {
        let group_id = id("UserGroupId", &req.user_group_id)?;
        engine(&req.engine)?;
        let group = UserGroup { id: group_id.clone(), user_ids: user_ids(&req.user_ids)?, created_ms: now_ms() };
        let topology = self.propose_access(Change::CreateUserGroup { group }).await?;
        let ug =
            topology.user_groups.get(&group_id).ok_or_else(|| rejection(Rejection::UserGroupNotFound(group_id)))?;
        Ok(user_group_view(ug, &topology))
    }

    pub(super) async fn do_modify_user_group(
        &self,
        req: admin::ModifyUserGroupRequest,
    ) -> Result<admin::UserGroup, Status> {
        let group_id = id("UserGroupId", &req.user_group_id)?;
        let (add, remove) = (user_ids(&req.user_ids_to_add)?, user_ids(&req.user_ids_to_remove)?);
        let change = Change::ModifyUserGroup { id: group_id.clone(), add, remove, at_ms: now_ms() };
        let topology = self.propose_access(change).await?;
        let ug =
            topology.user_groups.get(&group_id).ok_or_else(|| rejection(Rejection::UserGroupNotFound(group_id)))?;
        Ok(user_group_view(ug, &topology))
    }

    pub(super) async fn do_delete_user_group(
        &self,
        req: admin::DeleteUserGroupRequest,
    ) -> Result<admin::UserGroup, Status> {
        let group_id = id("UserGroupId", &req.user_group_id)?;
        let before = self.coordinator.linearizable().await?;
        let ug = before
            .user_groups
            .get(&group_id)
            .cloned()
            .ok_or_else(|| rejection(Rejection::UserGroupNotFound(group_id.clone())))?;
        let topology = self.propose_access(Change::DeleteUserGroup { id: group_id, at_ms: now_ms() }).await?;
        let mut view = user_group_view(&ug, &topology);
        view.status = "deleting".into();
        Ok(view)
    }

    pub(super) async fn do_describe_user_groups(
        &self,
        req: admin::DescribeUserGroupsRequest,
    ) -> Result<admin::DescribeUserGroupsResponse, Status> {
        let topology = self.coordinator.linearizable().await?;
        let wanted = req.user_group_id.to_ascii_lowercase();
        if !wanted.is_empty() && !topology.user_groups.contains_key(&wanted) {
            return Err(rejection(Rejection::UserGroupNotFound(wanted)));
        }
        let user_groups = topology
            .user_groups
            .values()
            .filter(|ug| wanted.is_empty() || ug.id == wanted)
            .map(|ug| user_group_view(ug, &topology))
            .collect();
        Ok(admin::DescribeUserGroupsResponse { user_groups })
    }
}
