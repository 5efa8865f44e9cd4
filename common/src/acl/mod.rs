//! Redis 6+ ACL users: rules (`on >secret ~app:* +@read`), password hashes, and the check a
//! command passes before it runs. The coordinators validate rules with it and the gateways
//! enforce them, so both read the same language.

use sha2::{Digest, Sha256};

use crate::command::{self, CommandSpec};
use crate::glob::glob_match;

pub mod categories;

use categories::{entries, entry_index, in_category, CATEGORIES};

/// A key pattern and what it grants (`~p` both, `%R~p` reads, `%W~p` writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
}

impl KeyPattern {
    fn describe(&self) -> String {
        let p = String::from_utf8_lossy(&self.pattern);
        match (self.read, self.write) {
            (true, true) => format!("~{p}"),
            (true, false) => format!("%R~{p}"),
            _ => format!("%W~{p}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    /// Any password authenticates.
    pub nopass: bool,
    /// SHA-256 of each password, lowercase hex, in the order added.
    pub passwords: Vec<String>,
    pub sanitize_payload: bool,
    /// By [`categories::entries`] index.
    allowed: Vec<bool>,
    /// The command rules as given, compacted (what ACL GETUSER shows).
    command_rules: Vec<String>,
    /// `+@all` (or `-@all`) starts the rules.
    base_all: bool,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<Vec<u8>>,
}

/// Why a rule was refused; Display is Redis's text after "Error in ACL SETUSER modifier".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Syntax error")]
    Syntax,
    #[error("Unknown command or category name in ACL")]
    UnknownCommand,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    KeyAfterAll,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    ChannelAfterAll,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
    #[error("Selectors are not supported by Ferrocache")]
    Selectors,
}

/// What a denied command lacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The command (or `container|sub`) is not allowed.
    Command(String),
    Key(Vec<u8>),
    Channel(Vec<u8>),
}

impl Denied {
    /// Redis 7.2's NOPERM text for this user.
    pub fn message(&self, user: &str) -> String {
        match self {
            Denied::Command(c) => format!("User {user} has no permissions to run the '{c}' command"),
            Denied::Key(k) => {
                format!("User {user} has no permissions to access the '{}' key", String::from_utf8_lossy(k))
            }
            Denied::Channel(c) => {
                format!("User {user} has no permissions to access the '{}' channel", String::from_utf8_lossy(c))
            }
        }
    }

    /// ACL LOG's reason and object.
    pub fn reason(&self) -> (&'static str, String) {
        match self {
            Denied::Command(c) => ("command", c.clone()),
            Denied::Key(k) => ("key", String::from_utf8_lossy(k).into_owned()),
            Denied::Channel(c) => ("channel", String::from_utf8_lossy(c).into_owned()),
        }
    }
}

/// SHA-256 in lowercase hex, as Redis stores passwords.
pub fn hash_password(password: &[u8]) -> String {
    let digest = Sha256::digest(password);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn valid_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Compares without stopping at the first difference, so timing says nothing of the secret.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl User {
    /// A user as ACL SETUSER creates one: off, no passwords, no keys, no channels, no commands.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            sanitize_payload: true,
            allowed: vec![false; entries().len()],
            command_rules: Vec::new(),
            base_all: false,
            all_keys: false,
            keys: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
        }
    }

    /// Redis's `default` user before anyone configures it: on, nopass, everything allowed.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            let _ = u.apply(rule);
        }
        u
    }

    /// A user built from rules (as stored by the coordinators).
    pub fn from_rules<S: AsRef<str>>(name: &str, rules: &[S]) -> Result<User, (String, RuleError)> {
        let mut u = User::new(name);
        for r in rules {
            u.apply(r.as_ref()).map_err(|e| (r.as_ref().to_string(), e))?;
        }
        Ok(u)
    }

    /// Applies one ACL SETUSER rule. On error the user is unchanged.
    pub fn apply(&mut self, rule: &str) -> Result<(), RuleError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "sanitize-payload" => self.sanitize_payload = true,
            "skip-sanitize-payload" => self.sanitize_payload = false,
            "allkeys" => return self.apply("~*"),
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" => return self.apply("&*"),
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" => return self.apply("+@all"),
            "nocommands" => return self.apply("-@all"),
            "clearselectors" => {}
            "reset" => {
                let name = std::mem::take(&mut self.name);
                *self = User::new(&name);
            }
            _ => return self.apply_pattern_or_command(rule),
        }
        Ok(())
    }

    fn apply_pattern_or_command(&mut self, rule: &str) -> Result<(), RuleError> {
        let bytes = rule.as_bytes();
        match bytes.first() {
            Some(b'>') => {
                let h = hash_password(&bytes[1..]);
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            Some(b'<') => {
                let h = hash_password(&bytes[1..]);
                let Some(i) = self.passwords.iter().position(|p| *p == h) else {
                    return Err(RuleError::NoSuchPassword);
                };
                self.passwords.remove(i);
            }
            Some(b'#') => {
                let h = &rule[1..];
                if !valid_hash(h) {
                    return Err(RuleError::BadHash);
                }
                if !self.passwords.iter().any(|p| p == h) {
                    self.passwords.push(h.to_string());
                }
                self.nopass = false;
            }
            Some(b'!') => {
                let h = &rule[1..];
                if !valid_hash(h) {
                    return Err(RuleError::BadHash);
                }
                let Some(i) = self.passwords.iter().position(|p| p == h) else {
                    return Err(RuleError::NoSuchPassword);
                };
                self.passwords.remove(i);
            }
            Some(b'~') => self.add_key(&bytes[1..], true, true)?,
            Some(b'%') => {
                let Some(tilde) = rule.find('~') else { return Err(RuleError::Syntax) };
                let perms = rule[1..tilde].to_ascii_uppercase();
                let (read, write) = match perms.as_str() {
                    "R" => (true, false),
                    "W" => (false, true),
                    "RW" | "WR" => (true, true),
                    _ => return Err(RuleError::Syntax),
                };
                self.add_key(&bytes[tilde + 1..], read, write)?;
            }
            Some(b'&') => {
                let p = &bytes[1..];
                if p == b"*" {
                    self.all_channels = true;
                    self.channels.clear();
                } else if self.all_channels {
                    return Err(RuleError::ChannelAfterAll);
                } else if !self.channels.iter().any(|c| c == p) {
                    self.channels.push(p.to_vec());
                }
            }
            Some(b'(') => return Err(RuleError::Selectors),
            Some(&sign @ (b'+' | b'-')) => self.apply_command_rule(sign == b'+', &rule[1..])?,
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn add_key(&mut self, pattern: &[u8], read: bool, write: bool) -> Result<(), RuleError> {
        if pattern == b"*" && read && write {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        if self.all_keys {
            return Err(RuleError::KeyAfterAll);
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern { pattern: pattern.to_vec(), read, write }),
        }
        Ok(())
    }

    fn apply_command_rule(&mut self, allow: bool, what: &str) -> Result<(), RuleError> {
        let what = what.to_ascii_lowercase();
        let sign = if allow { '+' } else { '-' };
        if let Some(cat) = what.strip_prefix('@') {
            if cat == "all" {
                self.allowed.iter_mut().for_each(|a| *a = allow);
                self.command_rules.clear();
                self.base_all = allow;
                return Ok(());
            }
            if !CATEGORIES.contains(&cat) {
                return Err(RuleError::UnknownCommand);
            }
            for (i, e) in entries().iter().enumerate() {
                if in_category(e, cat) {
                    self.allowed[i] = allow;
                }
            }
        } else {
            let Some(i) = entry_index(&what) else { return Err(RuleError::UnknownCommand) };
            self.allowed[i] = allow;
            // A container rule covers its subcommands.
            for (j, e) in entries().iter().enumerate() {
                if e.parent == Some(i) {
                    self.allowed[j] = allow;
                }
            }
        }
        // Keep the description short: a later rule on the same name replaces an earlier one.
        self.command_rules.retain(|r| r[1..] != what);
        self.command_rules.push(format!("{sign}{what}"));
        Ok(())
    }

    /// Does `password` authenticate this user?
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = hash_password(password);
        self.passwords.iter().fold(false, |ok, p| ok | same(p, &h))
    }

    /// Everything allowed: the check can be skipped.
    pub fn unrestricted(&self) -> bool {
        self.all_keys && self.all_channels && self.allowed.iter().all(|&a| a)
    }

    /// May this user run `args` (a command of `spec`, name at index 0)?
    pub fn check(&self, spec: &CommandSpec, args: &[impl AsRef<[u8]>]) -> Result<(), Denied> {
        // A command's entry index is its index in COMMANDS: found by name in O(1), not by a scan.
        let Some(index) = command::index(spec.name.as_bytes()) else {
            return Err(Denied::Command(spec.name.to_string()));
        };
        let entry = categories::resolve(index, args);
        if !self.allowed[entry] {
            return Err(Denied::Command(entries()[entry].name.clone()));
        }
        if !self.all_keys {
            let read = !spec.is_write();
            let write = spec.is_write() || !spec.has(command::Flag::Readonly);
            for i in command::key_positions(spec, args) {
                let key = args[i].as_ref();
                if !self.key_allowed(key, read, write) {
                    return Err(Denied::Key(key.to_vec()));
                }
            }
        }
        if !self.all_channels {
            let channels: &[_] = match spec.name {
                "publish" | "spublish" => &args[1..2.min(args.len())],
                "subscribe" | "ssubscribe" | "psubscribe" => &args[1..],
                _ => &[],
            };
            let literal = spec.name == "psubscribe";
            for c in channels {
                if !self.channel_allowed(c.as_ref(), literal) {
                    return Err(Denied::Channel(c.as_ref().to_vec()));
                }
            }
        }
        Ok(())
    }

    fn key_allowed(&self, key: &[u8], read: bool, write: bool) -> bool {
        let covers = |want_read: bool, want_write: bool| {
            self.keys.iter().any(|k| (!want_read || k.read) && (!want_write || k.write) && glob_match(&k.pattern, key))
        };
        // A key needing both may be granted by one pattern for reads and another for writes.
        (!read || covers(true, false)) && (!write || covers(false, true))
    }

    /// A pattern subscription must name one of the user's patterns exactly (as Redis).
    fn channel_allowed(&self, channel: &[u8], literal: bool) -> bool {
        self.channels.iter().any(|p| if literal { p == channel } else { glob_match(p, channel) })
    }

    /// `on`/`off`, `nopass`, `sanitize-payload`: ACL GETUSER's flags.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        f.push(if self.sanitize_payload { "sanitize-payload" } else { "skip-sanitize-payload" });
        f
    }

    pub fn commands_description(&self) -> String {
        let mut parts = vec![if self.base_all { "+@all" } else { "-@all" }.to_string()];
        parts.extend(self.command_rules.iter().cloned());
        parts.join(" ")
    }

    pub fn keys_description(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        self.keys.iter().map(KeyPattern::describe).collect::<Vec<_>>().join(" ")
    }

    pub fn channels_description(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

    /// ACL LIST's line: `user alice on #<sha256> ~app:* resetchannels -@all +@read`.
    pub fn describe(&self) -> String {
        let mut parts = vec!["user".to_string(), self.name.clone()];
        parts.extend(self.flags().into_iter().map(String::from));
        parts.extend(self.passwords.iter().map(|p| format!("#{p}")));
        let keys = self.keys_description();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.all_channels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let ch = self.channels_description();
            if !ch.is_empty() {
                parts.push(ch);
            }
        }
        parts.push(self.commands_description());
        parts.join(" ")
    }
}

/// Checks an ElastiCache access string (rules without passwords) and returns its rules.
pub fn parse_access_string(access: &str) -> Result<Vec<String>, String> {
    let rules: Vec<String> = access.split_whitespace().map(String::from).collect();
    let mut probe = User::new("probe");
    for r in &rules {
        if matches!(r.as_bytes().first(), Some(b'>' | b'<' | b'#' | b'!')) || r.eq_ignore_ascii_case("nopass") {
            return Err(format!("passwords do not belong in an access string: '{r}'"));
        }
        probe.apply(r).map_err(|e| format!("invalid access string rule '{r}': {e}"))?;
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static CommandSpec {
        command::lookup(name.as_bytes()).unwrap()
    }

    #[test]
    fn default_user_allows_everything() {
        let u = User::default_user();
        assert!(u.unrestricted());
        assert!(u.password_ok(b"anything"));
        assert_eq!(u.describe(), "user default on nopass sanitize-payload ~* &* +@all");
    }

    #[test]
    fn read_only_user_on_a_prefix() {
        let u = User::from_rules("app", &["on", ">s3cret-s3cret-s3cret", "~app:*", "+@read"]).unwrap();
        assert!(u.password_ok(b"s3cret-s3cret-s3cret"));
        assert!(!u.password_ok(b"wrong"));
        assert_eq!(u.check(spec("get"), &["get", "app:1"]), Ok(()));
        assert_eq!(u.check(spec("get"), &["get", "other"]), Err(Denied::Key(b"other".to_vec())));
        assert_eq!(u.check(spec("set"), &["set", "app:1", "v"]), Err(Denied::Command("set".into())));
        assert_eq!(u.check(spec("mget"), &["mget", "app:1", "x"]), Err(Denied::Key(b"x".to_vec())));
        assert_eq!(
            u.describe(),
            format!(
                "user app on sanitize-payload #{} ~app:* resetchannels -@all +@read",
                hash_password(b"s3cret-s3cret-s3cret")
            )
        );
        assert_eq!(
            Denied::Command("set".into()).message("app"),
            "User app has no permissions to run the 'set' command"
        );
    }

    #[test]
    fn disabled_user_never_authenticates() {
        let u = User::from_rules("x", &["off", "nopass", "+@all"]).unwrap();
        assert!(!u.password_ok(b""));
    }

    #[test]
    fn subcommand_rules() {
        let u = User::from_rules("x", &["on", "~*", "+@all", "-@dangerous"]).unwrap();
        assert_eq!(u.check(spec("client"), &["client", "setname", "n"]), Ok(()));
        assert_eq!(u.check(spec("client"), &["client", "kill", "1"]), Err(Denied::Command("client|kill".into())));
        assert_eq!(u.check(spec("flushall"), &["flushall"]), Err(Denied::Command("flushall".into())));
        let v = User::from_rules("y", &["on", "-@all", "+config|get"]).unwrap();
        assert_eq!(v.check(spec("config"), &["config", "get", "x"]), Ok(()));
        assert!(v.check(spec("config"), &["config", "set", "x", "y"]).is_err());
        assert_eq!(v.commands_description(), "-@all +config|get");
    }

    #[test]
    fn read_and_write_key_patterns() {
        let u = User::from_rules("x", &["on", "+@all", "%R~r:*", "%W~w:*"]).unwrap();
        assert_eq!(u.check(spec("get"), &["get", "r:1"]), Ok(()));
        assert!(u.check(spec("get"), &["get", "w:1"]).is_err());
        assert_eq!(u.check(spec("set"), &["set", "w:1", "v"]), Ok(()));
        assert!(u.check(spec("set"), &["set", "r:1", "v"]).is_err());
        assert_eq!(u.keys_description(), "%R~r:* %W~w:*");
    }

    #[test]
    fn channels() {
        let u = User::from_rules("x", &["on", "+@all", "~*", "&news.*"]).unwrap();
        assert_eq!(u.check(spec("publish"), &["publish", "news.a", "m"]), Ok(()));
        assert!(u.check(spec("publish"), &["publish", "other", "m"]).is_err());
        assert_eq!(u.check(spec("psubscribe"), &["psubscribe", "news.*"]), Ok(()));
        assert!(u.check(spec("psubscribe"), &["psubscribe", "news.a*"]).is_err());
    }

    #[test]
    fn bad_rules_change_nothing() {
        let mut u = User::from_rules("x", &["on", "~*"]).unwrap();
        let before = u.clone();
        assert_eq!(u.apply("~foo"), Err(RuleError::KeyAfterAll));
        assert_eq!(u.apply("+nosuchcommand"), Err(RuleError::UnknownCommand));
        assert_eq!(u.apply("+@nosuch"), Err(RuleError::UnknownCommand));
        assert_eq!(u.apply("<missing"), Err(RuleError::NoSuchPassword));
        assert_eq!(u.apply("#abc"), Err(RuleError::BadHash));
        assert_eq!(u.apply("bogus"), Err(RuleError::Syntax));
        assert_eq!(u, before);
        assert!(parse_access_string("on ~* +@all").is_ok());
        assert!(parse_access_string("on >pw ~*").is_err());
        assert!(parse_access_string("on ~* +nosuch").is_err());
    }
}
