//! Redis's glob-style pattern matching (KEYS, SCAN MATCH, and later PSUBSCRIBE):
//! `*`, `?`, `[abc]`, `[^a-z]`, and `\` to escape.

/// Does `text` match `pattern`? Same rules as Redis's `stringmatchlen`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with one backtracking point for the last `*`: linear in practice
    // and never recursive, so a hostile pattern cannot blow the stack.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_class(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c => {
                    if c == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[start] == b'['`; returns whether it
/// matched and the index after the class.
fn match_class(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < pattern.len() && pattern[i] == b'^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        if i >= pattern.len() {
            // Unterminated class: Redis treats the end of pattern as the end of the class.
            break;
        }
        match pattern[i] {
            b']' => {
                i += 1;
                break;
            }
            b'\\' if i + 1 < pattern.len() => {
                if pattern[i + 1] == c {
                    matched = true;
                }
                i += 2;
            }
            lo if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' => {
                let hi = pattern[i + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                if (lo..=hi).contains(&c) {
                    matched = true;
                }
                i += 3;
            }
            x => {
                if x == c {
                    matched = true;
                }
                i += 1;
            }
        }
    }
    Some((matched != negate, i))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, t: &str) -> bool {
        glob_match(p.as_bytes(), t.as_bytes())
    }

    #[test]
    fn redis_examples() {
        // The KEYS documentation's examples.
        assert!(m("h?llo", "hello") && m("h?llo", "hallo") && m("h?llo", "hxllo"));
        assert!(m("h*llo", "hllo") && m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hello") && m("h[ae]llo", "hallo") && !m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo") && m("h[^e]llo", "hbllo") && !m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hallo") && m("h[a-b]llo", "hbllo") && !m("h[a-b]llo", "hcllo"));
    }

    #[test]
    fn stars_escapes_and_edges() {
        assert!(m("*", "") && m("*", "anything") && m("**", "x"));
        assert!(!m("", "x") && m("", ""));
        assert!(m("a*b*c", "aXXbYYc") && !m("a*b*c", "aXXbYY"));
        assert!(m("h\\*llo", "h*llo") && !m("h\\*llo", "hello"));
        assert!(m("user:*", "user:1") && !m("user:*", "users"));
        assert!(m("[z-a]", "m"));
        assert!(m("*a", "bbba") && !m("*a", "bbbab"));
    }
}
