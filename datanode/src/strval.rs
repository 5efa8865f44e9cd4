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

#[derive(Clone)]
pub enum Str {
    Inline { len: u8, data: [u8; INLINE] },
    Heap(Bytes),
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

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Str::Inline { len, data } => &data[..*len as usize],
            Str::Heap(b) => b,
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
}
