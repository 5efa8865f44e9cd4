//! Geo commands (geo.c): points live in a sorted set scored by their 52-bit geohash;
//! searches scan the cells Redis scans, in its order, so replies match redis-server.

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, parse_f64, syntax_error};
use super::{zsets, CmdResult, Ctx};
use crate::geohash::{self, Shape, STEP_MAX};
use crate::value::Value;
use crate::zset::SortedSet;

fn float_arg(arg: &[u8], what: Option<&str>) -> Result<f64, Reply> {
    parse_f64(arg).ok_or_else(|| match what {
        Some(msg) => Reply::error(format!("ERR {msg}")),
        None => Reply::error(errors::NOT_FLOAT),
    })
}

/// A longitude/latitude pair within Redis's indexable range.
fn lon_lat(pair: &[Bytes]) -> Result<(f64, f64), Reply> {
    let (lon, lat) = (float_arg(&pair[0], None)?, float_arg(&pair[1], None)?);
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon) || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(Reply::error(format!("ERR invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

/// Meters per unit.
fn unit(arg: &[u8]) -> Result<f64, Reply> {
    match arg.to_ascii_lowercase().as_slice() {
        b"m" => Ok(1.0),
        b"km" => Ok(1000.0),
        b"ft" => Ok(0.3048),
        b"mi" => Ok(1609.34),
        _ => Err(Reply::error("ERR unsupported unit provided. please use M, KM, FT, MI")),
    }
}

/// Redis's human form of a coordinate: 17 decimals, trailing zeros dropped.
fn human(v: f64) -> Reply {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(trimmed);
    }
    if s == "-0" {
        s = "0".into();
    }
    Reply::DoubleText(Bytes::from(s))
}

fn distance_reply(d: f64) -> Reply {
    Reply::Bulk(Bytes::from(format!("{d:.4}")))
}

impl Ctx<'_> {
    fn read_geo(&mut self, key: &[u8]) -> Result<Option<&SortedSet>, Reply> {
        self.read_as(key, Value::as_zset)
    }
}

/// GEOADD key [NX|XX] [CH] longitude latitude member ...: a ZADD of the members' geohashes.
pub(super) fn geoadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut at = 2;
    let (mut nx, mut xx) = (false, false);
    while at < args.len() {
        let a = &args[at];
        if eq_ignore_case(a, "NX") {
            nx = true;
        } else if eq_ignore_case(a, "XX") {
            xx = true;
        } else if !eq_ignore_case(a, "CH") {
            break;
        }
        at += 1;
    }
    if !(args.len() - at).is_multiple_of(3) || (nx && xx) {
        return Err(syntax_error());
    }
    let mut zadd: Vec<Bytes> = vec![Bytes::from_static(b"ZADD")];
    zadd.extend_from_slice(&args[1..at]);
    for point in args[at..].chunks(3) {
        let (lon, lat) = lon_lat(point)?;
        let hash = geohash::encode_wgs84(lon, lat, STEP_MAX)
            .ok_or_else(|| Reply::error(format!("ERR invalid longitude,latitude pair {lon:.6},{lat:.6}")))?;
        zadd.push(Bytes::from(hash.align52().to_string()));
        zadd.push(point[2].clone());
    }
    zsets::zadd(ctx, &zadd)
}

/// GEOPOS key member ...
pub(super) fn geopos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let z = ctx.read_geo(&args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)).and_then(geohash::decode_score) {
                Some((lon, lat)) => Reply::Array(vec![human(lon), human(lat)]),
                None => Reply::NullArray,
            })
            .collect(),
    ))
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
pub(super) fn geodist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let to_meters = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(syntax_error()),
    };
    let Some(z) = ctx.read_geo(&args[1])? else { return Ok(Reply::NullBulk) };
    let point = |m: &[u8]| z.score(m).and_then(geohash::decode_score);
    match (point(&args[2]), point(&args[3])) {
        (Some((lon1, lat1)), Some((lon2, lat2))) => {
            Ok(distance_reply(geohash::distance(lon1, lat1, lon2, lat2) / to_meters))
        }
        _ => Ok(Reply::NullBulk),
    }
}

/// GEOHASH key member ...
pub(super) fn geohash_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let z = ctx.read_geo(&args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)).and_then(geohash::standard_geohash) {
                Some(h) => Reply::Bulk(Bytes::from(h)),
                None => Reply::NullBulk,
            })
            .collect(),
    ))
}

/// Which search command runs (their arguments differ).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Query {
    /// GEORADIUS key lon lat radius unit ...
    Radius { store: bool },
    /// GEORADIUSBYMEMBER key member radius unit ...
    ByMember { store: bool },
    /// GEOSEARCH key ...
    Geosearch,
    /// GEOSEARCHSTORE dest key ...
    GeosearchStore,
}

struct Found {
    member: Bytes,
    score: f64,
    dist: f64,
    lon: f64,
    lat: f64,
}

/// Radius/distance arguments: (value, meters per unit).
fn distance_args(value: &[u8], unit_arg: &[u8], what: &str) -> Result<(f64, f64), Reply> {
    let v = float_arg(value, Some(what))?;
    if v < 0.0 {
        return Err(Reply::error("ERR radius cannot be negative"));
    }
    Ok((v, unit(unit_arg)?))
}

/// GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO], GEOSEARCH and GEOSEARCHSTORE (Redis's
/// georadiusGeneric: same checks in the same order).
pub(super) fn search(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Query) -> CmdResult {
    let src = if kind == Query::GeosearchStore { &args[2] } else { &args[1] };
    let exists = ctx.read_geo(src)?.is_some();
    let member_point = |ctx: &mut Ctx<'_>, m: &[u8]| -> Result<(f64, f64), Reply> {
        ctx.read_geo(src)?
            .and_then(|z| z.score(m))
            .and_then(geohash::decode_score)
            .ok_or_else(|| Reply::error("ERR could not decode requested zset member"))
    };
    let mut center = None;
    let mut shape: Option<(Shape, f64)> = None;
    let mut store: Option<&Bytes> = None;
    let base = match kind {
        Query::Radius { .. } => {
            center = Some(lon_lat(&args[2..4])?);
            let (r, conv) = distance_args(&args[4], &args[5], "need numeric radius")?;
            shape = Some((Shape::Radius(r), conv));
            6
        }
        Query::ByMember { .. } if !exists => 5,
        Query::ByMember { .. } => {
            center = Some(member_point(ctx, &args[2])?);
            let (r, conv) = distance_args(&args[3], &args[4], "need numeric radius")?;
            shape = Some((Shape::Radius(r), conv));
            5
        }
        Query::Geosearch => 2,
        Query::GeosearchStore => {
            store = Some(&args[1]);
            3
        }
    };
    let can_store = matches!(kind, Query::Radius { store: true } | Query::ByMember { store: true });
    let geosearch = matches!(kind, Query::Geosearch | Query::GeosearchStore);
    let (mut withdist, mut withhash, mut withcoord, mut any, mut storedist) = (false, false, false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort: Option<bool> = None; // Some(true) = ascending
    let mut count: usize = 0;
    let rest = &args[base.min(args.len())..];
    let mut i = 0;
    while i < rest.len() {
        let remaining = rest.len();
        let a = &rest[i];
        if eq_ignore_case(a, "WITHDIST") {
            withdist = true;
        } else if eq_ignore_case(a, "WITHHASH") {
            withhash = true;
        } else if eq_ignore_case(a, "WITHCOORD") {
            withcoord = true;
        } else if eq_ignore_case(a, "ANY") {
            any = true;
        } else if eq_ignore_case(a, "ASC") {
            sort = Some(true);
        } else if eq_ignore_case(a, "DESC") {
            sort = Some(false);
        } else if eq_ignore_case(a, "COUNT") && i + 1 < remaining {
            let n = super::args::int_arg(&rest[i + 1])?;
            if n <= 0 {
                return Err(Reply::error("ERR COUNT must be > 0"));
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 1;
        } else if can_store && (eq_ignore_case(a, "STORE") || eq_ignore_case(a, "STOREDIST")) && i + 1 < remaining {
            store = Some(&rest[i + 1]);
            storedist = eq_ignore_case(a, "STOREDIST");
            i += 1;
        } else if kind == Query::GeosearchStore && eq_ignore_case(a, "STOREDIST") {
            storedist = true;
        } else if geosearch && eq_ignore_case(a, "FROMMEMBER") && i + 1 < remaining && !fromloc {
            if exists {
                center = Some(member_point(ctx, &rest[i + 1])?);
            }
            frommember = true;
            i += 1;
        } else if geosearch && eq_ignore_case(a, "FROMLONLAT") && i + 2 < remaining && !frommember {
            center = Some(lon_lat(&rest[i + 1..i + 3])?);
            fromloc = true;
            i += 2;
        } else if geosearch && eq_ignore_case(a, "BYRADIUS") && i + 2 < remaining && !bybox {
            let (r, conv) = distance_args(&rest[i + 1], &rest[i + 2], "need numeric radius")?;
            shape = Some((Shape::Radius(r), conv));
            byradius = true;
            i += 2;
        } else if geosearch && eq_ignore_case(a, "BYBOX") && i + 3 < remaining && !byradius {
            let w = float_arg(&rest[i + 1], Some("need numeric width"))?;
            let h = float_arg(&rest[i + 2], Some("need numeric height"))?;
            if w < 0.0 || h < 0.0 {
                return Err(Reply::error("ERR height or width cannot be negative"));
            }
            shape = Some((Shape::Box { width: w, height: h }, unit(&rest[i + 3])?));
            bybox = true;
            i += 3;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    // Redis names the command as the client typed it; clients send it upper-cased.
    let name = if kind == Query::GeosearchStore { "GEOSEARCHSTORE" } else { "GEOSEARCH" };
    if store.is_some() && (withdist || withhash || withcoord) {
        let what = if kind == Query::GeosearchStore { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(Reply::error(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    if geosearch && !(frommember || fromloc) {
        return Err(Reply::error(format!("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")));
    }
    if geosearch && !(byradius || bybox) {
        return Err(Reply::error(format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")));
    }
    if any && count == 0 {
        return Err(Reply::error("ERR the ANY argument requires COUNT argument"));
    }
    let (Some((lon, lat)), Some((shape, conversion)), true) = (center, shape, exists) else {
        return match store {
            Some(dest) => {
                ctx.store(dest, None, args.to_vec());
                Ok(Reply::Integer(0))
            }
            None => Ok(Reply::Array(vec![])),
        };
    };
    if count != 0 && sort.is_none() && !any {
        sort = Some(true);
    }
    let meters = match shape {
        Shape::Radius(r) => Shape::Radius(r * conversion),
        Shape::Box { width, height } => Shape::Box { width: width * conversion, height: height * conversion },
    };
    let limit = if any { count } else { 0 };
    let mut found: Vec<Found> = Vec::new();
    if let Some(z) = ctx.read_geo(src)? {
        for cell in geohash::search_cells(lon, lat, shape, conversion) {
            if limit > 0 && found.len() >= limit {
                break;
            }
            let min = cell.align52() as f64;
            let max = geohash::Hash { bits: cell.bits + 1, step: cell.step }.align52() as f64;
            let first = z.count_while(|s, _| s < min);
            for (member, score) in z.iter_from(first, false) {
                if score >= max || (limit > 0 && found.len() >= limit) {
                    break;
                }
                let Some((x, y)) = geohash::decode_score(score) else { continue };
                if let Some(dist) = geohash::within(meters, lon, lat, x, y) {
                    found.push(Found { member: member.clone(), score, dist, lon: x, lat: y });
                }
            }
        }
    }
    if let Some(asc) = sort {
        found.sort_by(|a, b| {
            let o = a.dist.partial_cmp(&b.dist).unwrap_or(std::cmp::Ordering::Equal);
            if asc {
                o
            } else {
                o.reverse()
            }
        });
    }
    if count > 0 {
        found.truncate(count);
    }
    let Some(dest) = store else {
        let options = [withdist, withhash, withcoord].iter().filter(|b| **b).count();
        return Ok(Reply::Array(
            found
                .into_iter()
                .map(|f| {
                    if options == 0 {
                        return Reply::Bulk(f.member);
                    }
                    let mut item = vec![Reply::Bulk(f.member)];
                    if withdist {
                        item.push(distance_reply(f.dist / conversion));
                    }
                    if withhash {
                        item.push(Reply::Integer(f.score as i64));
                    }
                    if withcoord {
                        item.push(Reply::Array(vec![human(f.lon), human(f.lat)]));
                    }
                    Reply::Array(item)
                })
                .collect(),
        ));
    };
    let stored = found.len() as i64;
    let mut z = SortedSet::new();
    for f in found {
        z.insert(f.member, if storedist { f.dist / conversion } else { f.score });
    }
    ctx.store(dest, (stored > 0).then(|| Value::ZSet(Box::new(z))), args.to_vec());
    Ok(Reply::Integer(stored))
}
