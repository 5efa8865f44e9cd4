//! String values as the keyspace holds them: short ones inside the entry itself (no
//! allocation), longer ones in one exact-size allocation of their own.
//!
//! Most cached values are short (counters, ids, flags, small JSON); an allocation per value
//! would cost more than the bytes it holds. Redis makes the same choice with its `embstr`.

use bytes::Bytes;

/// Longest string kept inline: the room the heap variant's pointer and length take.
pub const INLINE: usize = 30;

/// Largest heap string handed out as a copy rather than a shared reference: a copy this
/// small is cheaper than the reference count sharing would add to the stored value for good.
const COPY_OUT: usize = 4096;

/// Longest string Redis keeps `embstr` (its encoding when created whole).
const EMBSTR_MAX: usize = 44;

#[derive(Clone)]
pub enum Str {
    Inline {
        len: u8,
        data: [u8; INLINE],
    },
    Heap(Bytes),
    /// A short string changed in place (APPEND, SETRANGE, SETBIT, BITFIELD, BITOP, a
    /// HyperLogLog): Redis reports such strings `raw` whatever their length, so it is
    /// remembered here (on the heap; such strings are rare).
    Raw(Bytes),
}

impl Str {
    pub fn copy_from(b: &[u8]) -> Str {
        if b.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..b.len()].copy_from_slice(b);
            Str::Inline { len: b.len() as u8, data }
        } else {
            Str::Heap(Bytes::copy_from_slice(b))
        }
    }

    /// Takes `b` as it is when it is long (the caller built it and owns it), else inlines it.
    pub fn from_bytes(b: Bytes) -> Str {
        if b.len() <= INLINE {
            Str::copy_from(&b)
        } else {
            Str::Heap(b)
        }
    }

    /// A string written in place (see [`Str::Raw`]).
    pub fn raw(b: Bytes) -> Str {
        if b.len() <= EMBSTR_MAX {
            Str::Raw(Bytes::copy_from_slice(&b))
        } else {
            Str::Heap(b)
        }
    }

    /// Redis's encoding of the string: `raw` when written in place or longer than 44
    /// bytes, `int` for a decimal integer of at most 20 characters, else `embstr`.
    pub fn encoding(&self) -> &'static str {
        match self {
            Str::Raw(_) => "raw",
            s if s.len() > EMBSTR_MAX => "raw",
            s if s.len() <= 20 && ferrocache_common::int::parse_i64(s).is_some() => "int",
            _ => "embstr",
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Str::Inline { len, data } => &data[..*len as usize],
            Str::Heap(b) | Str::Raw(b) => b,
        }
    }

    /// The value as `Bytes` for a reply or an effect.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Str::Heap(b) if b.len() > COPY_OUT => b.clone(),
            _ => Bytes::copy_from_slice(self.as_slice()),
        }
    }
}

impl std::ops::Deref for Str {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_slice()))
    }
}

impl From<Bytes> for Str {
    fn from(b: Bytes) -> Str {
        Str::from_bytes(b)
    }
}

impl From<&'static str> for Str {
    fn from(s: &'static str) -> Str {
        Str::copy_from(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_inline_long_on_the_heap() {
        assert!(std::mem::size_of::<Str>() <= 40);
        for n in [0, 1, INLINE, INLINE + 1, 5000] {
            let v = vec![b'x'; n];
            let s = Str::copy_from(&v);
            assert_eq!(s.as_slice(), &v[..]);
            assert_eq!(matches!(s, Str::Inline { .. }), n <= INLINE);
            assert_eq!(s.to_bytes(), Bytes::from(v.clone()));
            assert_eq!(Str::from_bytes(Bytes::from(v)), s);
        }
    }

    #[test]
    fn encodings_are_redis_s() {
        assert_eq!(Str::from("12").encoding(), "int");
        assert_eq!(Str::from("012").encoding(), "embstr");
        assert_eq!(Str::copy_from(&[b'x'; 44]).encoding(), "embstr");
        assert_eq!(Str::copy_from(&[b'x'; 45]).encoding(), "raw");
        assert_eq!(Str::raw(Bytes::from_static(b"12")).encoding(), "raw");
        assert_eq!(Str::raw(Bytes::from_static(b"12")), Str::from("12"));
    }
}
