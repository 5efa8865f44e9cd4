//! Redis's geohash maths (geohash.c, geohash_helper.c): 52-bit interleaved cell IDs stored
//! as sorted-set scores, the cell and neighbours a radius or box search scans, and the
//! haversine distance on Redis's Earth radius, so results match redis-server digit for digit.

pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hash {
    pub bits: u64,
    pub step: u8,
}

impl Hash {
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The cell's first 52-bit score; the next cell's is the end of its range.
    pub fn align52(self) -> u64 {
        self.bits << (52 - self.step as u32 * 2)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

/// Spreads the low 32 bits of `v` to the even bit positions.
fn spread(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `v` into 32 bits.
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// Latitude bits on even positions, longitude bits on odd ones (Redis's interleave64).
fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// (latitude, longitude) cell coordinates.
fn deinterleave(bits: u64) -> (u32, u32) {
    (squash(bits), squash(bits >> 1))
}

/// The cell of `step` bits per coordinate holding the point, in the given ranges; None
/// outside them (or outside Redis's indexable latitudes).
pub fn encode(long_range: Range, lat_range: Range, longitude: f64, latitude: f64, step: u8) -> Option<Hash> {
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min || latitude > lat_range.max || longitude < long_range.min || longitude > long_range.max
    {
        return None;
    }
    let cells = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * cells;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * cells;
    Some(Hash { bits: interleave(lat_offset as u32, long_offset as u32), step })
}

pub fn wgs84() -> (Range, Range) {
    (Range { min: LONG_MIN, max: LONG_MAX }, Range { min: LAT_MIN, max: LAT_MAX })
}

pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Hash> {
    let (long_range, lat_range) = wgs84();
    encode(long_range, lat_range, longitude, latitude, step)
}

pub fn decode(long_range: Range, lat_range: Range, hash: Hash) -> Area {
    let (ilat, ilon) = deinterleave(hash.bits);
    let cells = (1u64 << hash.step) as f64;
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    Area {
        latitude: Range {
            min: lat_range.min + (ilat as f64 / cells) * lat_scale,
            max: lat_range.min + ((ilat as f64 + 1.0) / cells) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (ilon as f64 / cells) * long_scale,
            max: long_range.min + ((ilon as f64 + 1.0) / cells) * long_scale,
        },
    }
}

/// The centre of a stored score's cell: (longitude, latitude), clamped to the indexable
/// area as Redis clamps it. A point on the area's top or right edge (longitude 180, latitude
/// 85.05112878) is stored past 52 bits, so any non-negative score below 2^64 decodes.
pub fn decode_score(score: f64) -> Option<(f64, f64)> {
    if !(0.0..18_446_744_073_709_551_616.0).contains(&score) {
        return None;
    }
    let (long_range, lat_range) = wgs84();
    let area = decode(long_range, lat_range, Hash { bits: score as u64, step: STEP_MAX });
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some((lon, lat))
}

/// GEOHASH's 11-character standard geohash of a stored score.
pub fn standard_geohash(score: f64) -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score)?;
    let hash = encode(Range { min: -180.0, max: 180.0 }, Range { min: -90.0, max: 90.0 }, lon, lat, STEP_MAX)?;
    Some(
        (0..11)
            .map(|i| {
                let idx = if i == 10 { 0 } else { (hash.bits >> (52 - (i + 1) * 5)) & 0x1f };
                ALPHABET[idx as usize] as char
            })
            .collect(),
    )
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in meters between two (longitude, latitude) points.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (deg_rad(lon1), deg_rad(lon2));
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// What a search covers around its centre, in meters.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// The distance from the centre (lon, lat) to a point, if the point is inside the shape.
pub fn within(shape: Shape, lon: f64, lat: f64, x: f64, y: f64) -> Option<f64> {
    match shape {
        Shape::Radius(r) => Some(distance(lon, lat, x, y)).filter(|d| *d <= r),
        Shape::Box { width, height } => {
            if lat_distance(y, lat) > height / 2.0 || distance(x, y, lon, y) > width / 2.0 {
                return None;
            }
            Some(distance(lon, lat, x, y))
        }
    }
}

fn estimate_steps(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, STEP_MAX as i32) as u8
}

/// Moves a cell one step along one axis (`axis`: the mask of that coordinate's bits —
/// odd bits for longitude, even for latitude), wrapping as Redis's geohash_move_x/_y do.
fn move_along(hash: &mut Hash, d: i8, axis: u64) {
    if d == 0 {
        return;
    }
    let shift = 64 - hash.step as u32 * 2;
    let other = !axis;
    let mut v = hash.bits & axis;
    let rest = hash.bits & other;
    // The other axis's bits, set: adding 1 past them carries into this axis's next bit.
    let zz = other.checked_shr(shift).unwrap_or(0);
    if d > 0 {
        v = v.wrapping_add(zz + 1);
    } else {
        v |= zz;
        v = v.wrapping_sub(zz + 1);
    }
    v &= axis.checked_shr(shift).unwrap_or(0);
    hash.bits = v | rest;
}

const LONGITUDE_BITS: u64 = 0xaaaa_aaaa_aaaa_aaaa;
const LATITUDE_BITS: u64 = 0x5555_5555_5555_5555;

fn neighbour(hash: Hash, dx: i8, dy: i8) -> Hash {
    let mut h = hash;
    move_along(&mut h, dx, LONGITUDE_BITS);
    move_along(&mut h, dy, LATITUDE_BITS);
    h
}

/// The cells a search scans, in Redis's order: the centre's, north, south, east, west,
/// north-east, north-west, south-east, south-west; useless ones removed.
pub fn search_cells(lon: f64, lat: f64, shape: Shape, conversion: f64) -> Vec<Hash> {
    let (half_h, half_w, radius) = match shape {
        Shape::Radius(r) => (r, r, r),
        Shape::Box { width, height } => {
            (height / 2.0, width / 2.0, ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt())
        }
    };
    let (height, width) = (half_h * conversion, half_w * conversion);
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat + lat_delta).cos());
    let long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat - lat_delta).cos());
    let southern = lat < 0.0;
    let min_lon = if southern { lon - long_delta_bottom } else { lon - long_delta_top };
    let max_lon = if southern { lon + long_delta_bottom } else { lon + long_delta_top };
    let (min_lat, max_lat) = (lat - lat_delta, lat + lat_delta);

    let mut steps = estimate_steps(radius * conversion, lat);
    let (long_range, lat_range) = wgs84();
    let cells = |steps: u8| -> Option<(Hash, [Hash; 8], Area)> {
        let hash = encode(long_range, lat_range, lon, lat, steps)?;
        // north, south, east, west, north_east, north_west, south_east, south_west
        let n = [
            neighbour(hash, 0, 1),
            neighbour(hash, 0, -1),
            neighbour(hash, 1, 0),
            neighbour(hash, -1, 0),
            neighbour(hash, 1, 1),
            neighbour(hash, -1, 1),
            neighbour(hash, 1, -1),
            neighbour(hash, -1, -1),
        ];
        Some((hash, n, decode(long_range, lat_range, hash)))
    };
    let Some((mut hash, mut n, mut area)) = cells(steps) else { return Vec::new() };
    let (north, south, east, west) = (
        decode(long_range, lat_range, n[0]),
        decode(long_range, lat_range, n[1]),
        decode(long_range, lat_range, n[2]),
        decode(long_range, lat_range, n[3]),
    );
    let decrease = north.latitude.max < max_lat
        || south.latitude.min > min_lat
        || east.longitude.max < max_lon
        || west.longitude.min > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        if let Some(c) = cells(steps) {
            (hash, n, area) = c;
        }
    }
    let zero = Hash::default();
    if steps >= 2 {
        if area.latitude.min < min_lat {
            n[1] = zero;
            n[7] = zero;
            n[6] = zero;
        }
        if area.latitude.max > max_lat {
            n[0] = zero;
            n[4] = zero;
            n[5] = zero;
        }
        if area.longitude.min < min_lon {
            n[3] = zero;
            n[7] = zero;
            n[5] = zero;
        }
        if area.longitude.max > max_lon {
            n[2] = zero;
            n[6] = zero;
            n[4] = zero;
        }
    }
    let all: Vec<Hash> = std::iter::once(hash).chain(n).collect();
    let mut out: Vec<Hash> = Vec::with_capacity(9);
    let mut last = 0;
    for (i, h) in all.iter().enumerate() {
        // Huge radii make neighbours coincide: a cell equal to the last neighbour scanned
        // is skipped (Redis does not compare with the centre's).
        if h.is_zero() || (last != 0 && *h == all[last]) {
            continue;
        }
        out.push(*h);
        last = i;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_hashes_match_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" 15.087269 37.502669 "Catania"
        let palermo = encode_wgs84(13.361389, 38.115556, STEP_MAX).unwrap().align52();
        let catania = encode_wgs84(15.087269, 37.502669, STEP_MAX).unwrap().align52();
        assert_eq!(palermo, 3479099956230698);
        assert_eq!(catania, 3479447370796909);
        assert_eq!(standard_geohash(palermo as f64).unwrap(), "sqc8b49rny0");
        assert_eq!(standard_geohash(catania as f64).unwrap(), "sqdtr74hyu0");
        let (plon, plat) = decode_score(palermo as f64).unwrap();
        let (clon, clat) = decode_score(catania as f64).unwrap();
        assert_eq!(format!("{:.4}", distance(plon, plat, clon, clat)), "166274.1516");
        assert!(encode_wgs84(181.0, 0.0, STEP_MAX).is_none());
        assert!(encode_wgs84(0.0, 86.0, STEP_MAX).is_none());
        // The top-right corner is stored past 52 bits (Redis: 13510798882111488) and decodes
        // to the corner, as GEOPOS / GEOHASH show it in Redis.
        let corner = encode_wgs84(180.0, 85.05112878, STEP_MAX).unwrap().align52();
        assert_eq!(corner, 13510798882111488);
        assert_eq!(decode_score(corner as f64), Some((180.0, 85.05112878)));
        assert_eq!(standard_geohash(corner as f64).unwrap(), "bp05b5048p0");
        assert_eq!(decode_score(-1.0), None);
    }
}
