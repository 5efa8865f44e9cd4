//! RBAC commands, named as `aws elasticache` names them: create-user, describe-users,
//! modify-user, delete-user, and the same four for user groups.

use std::process::ExitCode;

use ferrocache_proto::admin::v1 as api;
use serde_json::{json, Value};

use crate::admin::invoke;
use crate::cli::{AdminOptions, Output};

#[derive(Debug, clap::Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The user's id (1-40 letters, digits, hyphens; starts with a letter).
    #[arg(long)]
    pub user_id: String,
    /// The name clients give to AUTH (a user group's users with name `default` serve
    /// clients that never AUTH).
    #[arg(long)]
    pub user_name: String,
    /// redis | valkey
    #[arg(long, default_value = "redis")]
    pub engine: String,
    /// A password (16-128 printable characters without spaces, '"', '/' or '@'); give it
    /// twice for two passwords.
    #[arg(long = "passwords", num_args = 1..=2)]
    pub passwords: Vec<String>,
    /// Redis ACL rules without passwords, e.g. "on ~app:* &* +@read".
    #[arg(long)]
    pub access_string: String,
    /// The user needs no password.
    #[arg(long)]
    pub no_password_required: bool,
}

#[derive(Debug, clap::Args)]
pub struct ModifyUserArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The user (its id).
    #[arg(long)]
    pub user_id: String,
    /// Replaces the access string.
    #[arg(long, default_value = "")]
    pub access_string: String,
    /// Rules applied after the current access string.
    #[arg(long, default_value = "")]
    pub append_access_string: String,
    /// Replaces the passwords (one or two).
    #[arg(long = "passwords", num_args = 1..=2)]
    pub passwords: Vec<String>,
    /// true | false: whether the user needs a password.
    #[arg(long)]
    pub no_password_required: Option<bool>,
}

#[derive(Debug, clap::Args)]
pub struct UserIdArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The user (its id); describe-users: only this one (all when omitted).
    #[arg(long, default_value = "")]
    pub user_id: String,
}

#[derive(Debug, clap::Args)]
pub struct CreateUserGroupArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The user group's id (same rules as a user id).
    #[arg(long)]
    pub user_group_id: String,
    /// redis | valkey
    #[arg(long, default_value = "redis")]
    pub engine: String,
    /// Its users; one of them must have the user name `default`.
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub user_ids: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ModifyUserGroupArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The user group (its id).
    #[arg(long)]
    pub user_group_id: String,
    /// Users to add to the group (ids).
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub user_ids_to_add: Vec<String>,
    /// Users to remove from the group (ids).
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub user_ids_to_remove: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct UserGroupIdArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The user group (its id); describe-user-groups: only this one (all when omitted).
    #[arg(long, default_value = "")]
    pub user_group_id: String,
}

fn user_json(u: &api::User) -> Value {
    json!({
        "UserId": u.user_id,
        "UserName": u.user_name,
        "Status": u.status,
        "Engine": u.engine,
        "MinimumEngineVersion": u.minimum_engine_version,
        "AccessString": u.access_string,
        "UserGroupIds": u.user_group_ids,
        "Authentication": u.authentication.as_ref().map(|a| json!({ "Type": a.r#type, "PasswordCount": a.password_count })),
    })
}

fn user_group_json(g: &api::UserGroup) -> Value {
    json!({
        "UserGroupId": g.user_group_id,
        "Status": g.status,
        "Engine": g.engine,
        "MinimumEngineVersion": g.minimum_engine_version,
        "UserIds": g.user_ids,
        "ReplicationGroups": g.replication_groups,
    })
}

fn print(v: Value, output: Output, table: impl FnOnce()) -> ExitCode {
    match output {
        Output::Json | Output::Text => crate::output::emit(&v, output),
        Output::Table => {
            table();
            ExitCode::SUCCESS
        }
    }
}

fn user_table(users: &[api::User]) {
    println!("{:<24} {:<16} {:<12} ACCESS STRING", "USER ID", "USER NAME", "AUTH");
    for u in users {
        let auth = u.authentication.as_ref().map(|a| a.r#type.clone()).unwrap_or_default();
        println!("{:<24} {:<16} {:<12} {}", u.user_id, u.user_name, auth, u.access_string);
    }
}

fn user_group_table(groups: &[api::UserGroup]) {
    println!("{:<24} {:<40} REPLICATION GROUPS", "USER GROUP", "USERS");
    for g in groups {
        println!("{:<24} {:<40} {}", g.user_group_id, g.user_ids.join(","), g.replication_groups.join(","));
    }
}

fn one_user(u: api::User, output: Output) -> ExitCode {
    print(user_json(&u), output, || user_table(std::slice::from_ref(&u)))
}

fn one_group(g: api::UserGroup, output: Output) -> ExitCode {
    print(user_group_json(&g), output, || user_group_table(std::slice::from_ref(&g)))
}

pub async fn create_user(a: CreateUserArgs) -> ExitCode {
    let req = api::CreateUserRequest {
        user_id: a.user_id,
        user_name: a.user_name,
        engine: a.engine,
        passwords: a.passwords,
        access_string: a.access_string,
        no_password_required: a.no_password_required,
    };
    let out = a.opts.output;
    invoke(&a.opts, "CreateUser", req, |mut c, r| async move { c.create_user(r).await }, |u| one_user(u, out)).await
}

pub async fn modify_user(a: ModifyUserArgs) -> ExitCode {
    let req = api::ModifyUserRequest {
        user_id: a.user_id,
        access_string: a.access_string,
        append_access_string: a.append_access_string,
        passwords: a.passwords,
        no_password_required: a.no_password_required,
    };
    let out = a.opts.output;
    invoke(&a.opts, "ModifyUser", req, |mut c, r| async move { c.modify_user(r).await }, |u| one_user(u, out)).await
}

pub async fn delete_user(a: UserIdArgs) -> ExitCode {
    let req = api::DeleteUserRequest { user_id: a.user_id };
    let out = a.opts.output;
    invoke(&a.opts, "DeleteUser", req, |mut c, r| async move { c.delete_user(r).await }, |u| one_user(u, out)).await
}

pub async fn describe_users(a: UserIdArgs) -> ExitCode {
    let req = api::DescribeUsersRequest { user_id: a.user_id };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "DescribeUsers",
        req,
        |mut c, r| async move { c.describe_users(r).await },
        |r| {
            let v = json!({ "Users": r.users.iter().map(user_json).collect::<Vec<_>>() });
            print(v, out, || user_table(&r.users))
        },
    )
    .await
}

pub async fn create_user_group(a: CreateUserGroupArgs) -> ExitCode {
    let req = api::CreateUserGroupRequest { user_group_id: a.user_group_id, engine: a.engine, user_ids: a.user_ids };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "CreateUserGroup",
        req,
        |mut c, r| async move { c.create_user_group(r).await },
        |g| one_group(g, out),
    )
    .await
}

pub async fn modify_user_group(a: ModifyUserGroupArgs) -> ExitCode {
    let req = api::ModifyUserGroupRequest {
        user_group_id: a.user_group_id,
        user_ids_to_add: a.user_ids_to_add,
        user_ids_to_remove: a.user_ids_to_remove,
    };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "ModifyUserGroup",
        req,
        |mut c, r| async move { c.modify_user_group(r).await },
        |g| one_group(g, out),
    )
    .await
}

pub async fn delete_user_group(a: UserGroupIdArgs) -> ExitCode {
    let req = api::DeleteUserGroupRequest { user_group_id: a.user_group_id };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "DeleteUserGroup",
        req,
        |mut c, r| async move { c.delete_user_group(r).await },
        |g| one_group(g, out),
    )
    .await
}

pub async fn describe_user_groups(a: UserGroupIdArgs) -> ExitCode {
    let req = api::DescribeUserGroupsRequest { user_group_id: a.user_group_id };
    let out = a.opts.output;
    invoke(
        &a.opts,
        "DescribeUserGroups",
        req,
        |mut c, r| async move { c.describe_user_groups(r).await },
        |r| {
            let v = json!({ "UserGroups": r.user_groups.iter().map(user_group_json).collect::<Vec<_>>() });
            print(v, out, || user_group_table(&r.user_groups))
        },
    )
    .await
}
