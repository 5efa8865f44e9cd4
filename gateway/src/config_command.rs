//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP. Parameters belong to the replication
//! group (ElastiCache's parameter groups), not to one server: CONFIG SET checks the values
//! as Redis does, then stores them through the coordinators (ModifyReplicationGroup
//! ParameterNameValues), and answers once this gateway's routes show the new values, so
//! every member and every gateway applies the same settings.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use ferrocache_common::glob::glob_match;
use ferrocache_common::parameters::{self, ParameterError, PARAMETERS};
use ferrocache_common::Reply;
use ferrocache_proto::admin::v1 as admin;

use crate::router::EndpointKind;
use crate::Shared;

/// How long CONFIG SET waits for the coordinators and then for the routes to show the change.
const SET_TIMEOUT: Duration = Duration::from_secs(5);

fn help() -> Reply {
    let lines = [
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Print this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect())
}

/// The group's parameters as this gateway's routes show them.
fn group_parameters(shared: &Shared, group: &str) -> BTreeMap<String, String> {
    shared.router.table().groups.get(group).map(|g| g.parameters.clone()).unwrap_or_default()
}

/// What CONFIG GET shows of the gateway's own settings (its command line decides them).
fn gateway_owned(shared: &Shared, port: u16) -> [(&'static str, String); 3] {
    [
        ("maxclients", shared.config.maxclients.to_string()),
        ("port", port.to_string()),
        ("bind", shared.config.bind.clone()),
    ]
}

/// CONFIG GET: every parameter matching one of the patterns, with the group's value.
pub fn get(shared: &Shared, group: &str, port: u16, patterns: &[Bytes]) -> Reply {
    let set = group_parameters(shared, group);
    let gateway_owned = gateway_owned(shared, port);
    let mut out = BTreeMap::new();
    let lowered: Vec<Vec<u8>> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
    let matches = |name: &str| lowered.iter().any(|p| glob_match(p, name.as_bytes()));
    for p in PARAMETERS.iter().filter(|p| matches(p.name)) {
        out.insert(p.name.to_string(), parameters::value(&set, p.name).to_string());
    }
    for (alias, name) in parameters::ALIASES.iter().filter(|(a, _)| matches(a)) {
        out.insert(alias.to_string(), parameters::value(&set, name).to_string());
    }
    for (name, value) in gateway_owned.into_iter().filter(|(n, _)| matches(n)) {
        out.insert(name.to_string(), value);
    }
    Reply::Map(out.into_iter().flat_map(|(k, v)| [Reply::Bulk(k.into()), Reply::Bulk(v.into())]).collect())
}

/// Checks every `name value` pair; the normalized values, or Redis's error for the first bad
/// one (then nothing is changed).
fn check(current: &BTreeMap<String, String>, pairs: &[Bytes]) -> Result<Vec<(String, String)>, Reply> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        if !seen.insert(name.clone()) {
            let e = ParameterError::Invalid { name, reason: "duplicate parameter".into() };
            return Err(Reply::error(e.to_string()));
        }
        let (canonical, normalized) =
            parameters::normalize_against(current, &name, &value).map_err(|e| Reply::error(e.to_string()))?;
        out.push((canonical.to_string(), normalized));
    }
    Ok(out)
}

/// What CONFIG SET would send the coordinators (None: every value is already in force), or
/// the error it answers.
fn validate(shared: &Shared, group: &str, port: u16, pairs: &[Bytes]) -> Result<Option<Vec<(String, String)>>, Reply> {
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(Reply::error("ERR wrong number of arguments for 'config|set' command"));
    }
    let owned = gateway_owned(shared, port);
    let mut rest = Vec::with_capacity(pairs.len());
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        match owned.iter().find(|(n, _)| *n == name) {
            Some((_, value)) if pair[1] == value.as_bytes() => {}
            Some(_) => {
                let why = match name.as_str() {
                    "port" => "the group's port is chosen when it is created",
                    "bind" => "set by the gateway's --bind",
                    _ => "set by the gateway's --maxclients",
                };
                return Err(Reply::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
                )));
            }
            None => rest.extend_from_slice(pair),
        }
    }
    if rest.is_empty() {
        return Ok(None);
    }
    let current = group_parameters(shared, group);
    let values = check(&current, &rest)?;
    if values.iter().all(|(k, v)| parameters::value(&current, k) == v) {
        return Ok(None);
    }
    Ok(Some(values))
}

/// CONFIG queued in MULTI, answered when it is queued: settings change through the
/// coordinators, which a transaction cannot hold. GET answers as of then, a SET that would
/// fail its error (Redis's answer inside EXEC), one that would change nothing OK; a SET that
/// would change something and RESETSTAT are refused.
pub fn queued(shared: &Shared, group: &str, port: u16, args: &[Bytes]) -> Reply {
    match parse(args) {
        ConfigCommand::Get(patterns) => get(shared, group, port, patterns),
        ConfigCommand::Set(pairs) => match validate(shared, group, port, pairs) {
            Ok(None) => Reply::ok(),
            Ok(Some(_)) => Reply::error("ERR CONFIG SET is not served inside MULTI"),
            Err(e) => e,
        },
        ConfigCommand::ResetStat => Reply::error("ERR CONFIG RESETSTAT is not served inside MULTI"),
        ConfigCommand::Answer(r) => r,
    }
}

/// CONFIG SET name value [name value ...]. A gateway setting CONFIG GET shows (maxclients,
/// port, bind) may be set to the value it has, as tools that write back what they read do;
/// another value is refused (the gateway's command line decides it).
pub async fn set(shared: &Shared, group: &str, port: u16, pairs: &[Bytes]) -> Reply {
    let values = match validate(shared, group, port, pairs) {
        Ok(Some(values)) => values,
        Ok(None) => return Reply::ok(),
        Err(e) => return e,
    };
    let request = admin::ModifyReplicationGroupRequest {
        replication_group_id: group.to_string(),
        parameter_name_values: values
            .iter()
            .map(|(k, v)| admin::ParameterNameValue { parameter_name: k.clone(), parameter_value: v.clone() })
            .collect(),
        ..Default::default()
    };
    if let Err(e) = modify(shared, request).await {
        return Reply::error(format!("ERR CONFIG SET failed: {e}"));
    }
    // Answer once this gateway's routes carry the change and the primary runs with it, so
    // the client's next command already sees it.
    let deadline = tokio::time::Instant::now() + SET_TIMEOUT;
    loop {
        let now = group_parameters(shared, group);
        if values.iter().all(|(k, v)| parameters::value(&now, k) == v) {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        shared.router.changed_since(shared.router.table().version, Duration::from_millis(200)).await;
    }
    // A lowered limit closes clients at once, as in Redis (not at their next command).
    if values.iter().any(|(k, _)| k == "maxmemory-clients" || k == "maxmemory") {
        crate::client_eviction::enforce(shared, group);
    }
    let probe = crate::request::Request::ParametersApplied(ferrocache_proto::internal::v1::ParametersAppliedRequest {
        parameters: values.into_iter().collect(),
    });
    let Ok(target) = shared.router.target(group, EndpointKind::Primary, None) else { return Reply::ok() };
    let rx = shared.router.send(target, None, probe).await;
    match tokio::time::timeout(SET_TIMEOUT + Duration::from_secs(1), rx).await {
        Ok(Ok(Reply::Error(e))) => Reply::Error(e),
        _ => Reply::ok(),
    }
}

/// Sends ModifyReplicationGroup to the first coordinator that answers (followers forward it
/// to the leader).
async fn modify(shared: &Shared, request: admin::ModifyReplicationGroupRequest) -> Result<(), String> {
    admin_call(shared, |mut client| {
        let request = request.clone();
        async move { client.modify_replication_group(request).await.map(|_| ()) }
    })
    .await
}

type AdminClient = admin::admin_client::AdminClient<ferrocache_common::credentials::Channel>;

/// Runs an admin call on the first coordinator that answers (followers forward to the
/// leader); a refusal of the request itself (a fault the API names) is final.
pub(crate) async fn admin_call<T, F, Fut>(shared: &Shared, call: F) -> Result<T, String>
where
    F: Fn(AdminClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut last = "no coordinator is configured".to_string();
    for address in &shared.config.coordinators {
        let attempt = async {
            let channel = ferrocache_common::credentials::connect(format!("http://{address}"))
                .await
                .map_err(|e| e.to_string())?;
            call(admin::admin_client::AdminClient::new(channel)).await.map_err(|s| s.message().to_string())
        };
        match tokio::time::timeout(SET_TIMEOUT, attempt).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if e.contains("InvalidParameterValue") || e.contains("InvalidReplicationGroupState") => {
                return Err(e)
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("coordinator {address} did not answer"),
        }
    }
    Err(last)
}

/// What CONFIG does with its arguments.
pub enum ConfigCommand<'a> {
    Get(&'a [Bytes]),
    Set(&'a [Bytes]),
    ResetStat,
    Answer(Reply),
}

pub fn parse(args: &[Bytes]) -> ConfigCommand<'_> {
    let sub = args[1].to_ascii_uppercase();
    match (sub.as_slice(), args.len()) {
        (b"GET", n) if n >= 3 => ConfigCommand::Get(&args[2..]),
        (b"SET", n) if n >= 4 => ConfigCommand::Set(&args[2..]),
        (b"RESETSTAT", 2) => ConfigCommand::ResetStat,
        (b"REWRITE", 2) => ConfigCommand::Answer(Reply::error("ERR The server is running without a config file")),
        (b"HELP", 2) => ConfigCommand::Answer(help()),
        (b"GET" | b"SET" | b"RESETSTAT" | b"REWRITE" | b"HELP", _) => ConfigCommand::Answer(Reply::error(format!(
            "ERR wrong number of arguments for 'config|{}' command",
            String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
        ))),
        _ => ConfigCommand::Answer(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}
