//! SORT and SORT_RO (Redis's sort.c): sort a list, set or sorted set numerically or
//! lexicographically, by its elements or by other keys (`BY pattern`), return them or other
//! keys' values (`GET pattern`), or store the result as a list.

use std::cmp::Ordering;
use std::collections::VecDeque;

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, syntax_error};
use super::{CmdResult, Ctx};
use crate::value::Value;

pub(super) fn sort(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    run(ctx, args, false)
}

pub(super) fn sort_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    run(ctx, args, true)
}

/// Redis's getLongFromObject for LIMIT: any 64-bit integer.
fn long_arg(arg: &[u8]) -> Result<i64, Reply> {
    super::args::parse_i64(arg).ok_or_else(|| Reply::error(errors::NOT_INTEGER))
}

/// What a pattern (`weight_*`, `obj_*->field`, `#`) gives for `element`: the element itself
/// for `#`, the string under the substituted key, or the hash field; None when missing, of
/// another type, or the pattern has no `*`.
fn by_pattern(ctx: &mut Ctx<'_>, pattern: &[u8], element: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(element.clone());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after.windows(2).position(|w| w == b"->").filter(|&i| i + 2 < after.len());
    let (suffix, field) = match arrow {
        Some(i) => (&after[..i], Some(&after[i + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(star + element.len() + suffix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    match (&ctx.lookup(&key)?.value, field) {
        (Value::Str(s), None) => Some(s.to_bytes()),
        (Value::Hash(h), Some(f)) => h.get(f).cloned(),
        _ => None,
    }
}

struct Item {
    element: Bytes,
    score: f64,
    /// ALPHA BY: the other key's value (None sorts first).
    by: Option<Bytes>,
}

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]; SORT_RO without STORE.
fn run(ctx: &mut Ctx<'_>, args: &[Bytes], readonly: bool) -> CmdResult {
    let key = &args[1];
    let (mut desc, mut alpha, mut limit, mut store, mut by, mut dontsort) = (false, false, None, None, None, false);
    let mut gets: Vec<&Bytes> = Vec::new();
    // Keys named by patterns may live on other nodes in cluster mode, as in Redis Cluster.
    let cluster = ctx.script.as_ref().is_some_and(|e| e.slots.is_some());
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if eq_ignore_case(a, "ASC") {
            desc = false;
        } else if eq_ignore_case(a, "DESC") {
            desc = true;
        } else if eq_ignore_case(a, "ALPHA") {
            alpha = true;
        } else if eq_ignore_case(a, "LIMIT") && left >= 2 {
            limit = Some((long_arg(&args[j + 1])?, long_arg(&args[j + 2])?));
            j += 2;
        } else if !readonly && eq_ignore_case(a, "STORE") && left >= 1 {
            store = Some(&args[j + 1]);
            j += 1;
        } else if eq_ignore_case(a, "BY") && left >= 1 {
            let pattern = &args[j + 1];
            if !pattern.contains(&b'*') {
                dontsort = true;
            } else if cluster {
                return Err(Reply::error("ERR BY option of SORT denied in Cluster mode."));
            }
            by = Some(pattern);
            j += 1;
        } else if eq_ignore_case(a, "GET") && left >= 1 {
            if cluster {
                return Err(Reply::error("ERR GET option of SORT denied in Cluster mode."));
            }
            gets.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    let (elements, is_set) = match ctx.lookup(key).map(|e| &e.value) {
        None => (Vec::new(), false),
        Some(Value::List(l)) => (l.iter().cloned().collect::<Vec<_>>(), false),
        Some(Value::Set(s)) => (s.iter().collect(), true),
        Some(Value::ZSet(z)) => (z.iter().map(|(m, _)| m.clone()).collect(), false),
        Some(_) => return Err(Reply::error(errors::WRONGTYPE)),
    };
    // A set has no order of its own: one that is stored, or handed to a script, is sorted,
    // so replicas and scripts see one order (as Redis's sortCommandGeneric).
    if dontsort && is_set && (store.is_some() || ctx.in_script) {
        dontsort = false;
        alpha = true;
        by = None;
    }
    let n = elements.len() as i64;
    let (mut start, mut end) = match limit {
        None => (0, n - 1),
        Some((offset, count)) => {
            let start = offset.max(0);
            (start, if count < 0 { n - 1 } else { start.saturating_add(count) - 1 })
        }
    };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    end = end.min(n - 1);
    let mut items: Vec<Item> = elements.into_iter().map(|element| Item { element, score: 0.0, by: None }).collect();
    if dontsort {
        // A list or sorted set keeps its own order (reversed by DESC).
        if desc {
            items.reverse();
        }
    } else {
        let by_pattern_set = by.is_some();
        for item in &mut items {
            let value = match by {
                Some(pattern) => by_pattern(ctx, pattern, &item.element),
                None => Some(item.element.clone()),
            };
            if alpha {
                item.by = value;
            } else if let Some(v) = value {
                item.score = super::args::parse_sort_f64(&v)
                    .ok_or_else(|| Reply::error("ERR One or more scores can't be converted into double"))?;
            }
        }
        let compare = |a: &Item, b: &Item| -> Ordering {
            let cmp = if !alpha {
                a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.element.cmp(&b.element))
            } else if by_pattern_set {
                match (&a.by, &b.by) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
                // Redis leaves ties unordered; ordering them by element makes a stored result
                // the same on replicas, which run the command again.
                .then_with(|| a.element.cmp(&b.element))
            } else {
                a.element.cmp(&b.element)
            };
            if desc {
                cmp.reverse()
            } else {
                cmp
            }
        };
        items.sort_by(compare);
    }
    let chosen: &[Item] = if start <= end && start >= 0 { &items[start as usize..=end as usize] } else { &[] };
    let mut out: Vec<Option<Bytes>> = Vec::with_capacity(chosen.len() * gets.len().max(1));
    for item in chosen {
        if gets.is_empty() {
            out.push(Some(item.element.clone()));
        }
        for pattern in &gets {
            out.push(by_pattern(ctx, pattern, &item.element));
        }
    }
    let Some(dest) = store else {
        return Ok(Reply::Array(out.into_iter().map(|v| v.map_or(Reply::NullBulk, Reply::Bulk)).collect()));
    };
    let list: VecDeque<Bytes> = out.into_iter().map(Option::unwrap_or_default).collect();
    let stored = list.len() as i64;
    ctx.store(dest, (!list.is_empty()).then_some(Value::List(list)), args.to_vec());
    Ok(Reply::Integer(stored))
}
