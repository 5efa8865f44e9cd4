//! Identifier rules and names in ElastiCache's style.

/// ElastiCache's rule for replication group ids: 1-40 characters, letters, digits and
/// hyphens, starting with a letter, no two consecutive hyphens, no trailing hyphen.
pub fn validate_replication_group_id(id: &str) -> Result<(), String> {
    validate_id("ReplicationGroupId", id)
}

/// The same rule for other ids (UserId, UserGroupId), named `what` in the error.
pub fn validate_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 40 {
        return Err(format!("{what} must be 1 to 40 characters long"));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("{what} must begin with a letter"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("{what} must contain only ASCII letters, digits and hyphens"));
    }
    if id.ends_with('-') || id.contains("--") {
        return Err(format!("{what} cannot end with a hyphen or contain two consecutive hyphens"));
    }
    Ok(())
}

/// ElastiCache's rule for AUTH tokens and user passwords: 16-128 printable ASCII
/// characters, none of them a space, '"', '/' or '@'.
pub fn validate_secret(what: &str, secret: &str) -> Result<(), String> {
    if !(16..=128).contains(&secret.len()) {
        return Err(format!("{what} must be 16 to 128 characters long"));
    }
    if !secret.bytes().all(|c| (b'!'..=b'~').contains(&c) && !matches!(c, b'"' | b'/' | b'@')) {
        return Err(format!("{what} must be printable ASCII without spaces, '\"', '/' or '@'"));
    }
    Ok(())
}

/// Cache cluster id of member `index` (0-based) in cluster-mode-disabled naming: `group-001`.
pub fn cache_cluster_id(group: &str, index: usize) -> String {
    format!("{group}-{:03}", index + 1)
}

/// Node group id of shard `index` (0-based): `0001`, as ElastiCache numbers them.
pub fn node_group_id(index: usize) -> String {
    format!("{:04}", index + 1)
}

/// Cache cluster id in cluster-mode-enabled naming: `group-0002-001` for member `member`
/// (0-based) of node group `node_group` (its id).
pub fn cluster_member_id(group: &str, node_group: &str, member: usize) -> String {
    format!("{group}-{node_group}-{:03}", member + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids() {
        assert!(validate_replication_group_id("default").is_ok());
        assert!(validate_replication_group_id("my-group-1").is_ok());
        for bad in ["", "1abc", "a--b", "ab-", "a_b", &"a".repeat(41)] {
            assert!(validate_replication_group_id(bad).is_err(), "{bad}");
        }
        assert_eq!(cache_cluster_id("default", 0), "default-001");
    }
}
