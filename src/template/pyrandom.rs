//! Python's `random.Random(seed)`, for the `random` and `shuffle` filters with a `seed`.
//!
//! Roles use `{{ 59 | random(seed=inventory_hostname) }}` to give every host its own but
//! stable cron minute or start delay. The number is only stable across tools if it is the
//! one Python picks: a host converged by Ansible and then by infra must keep its minute,
//! or the first infra run rewrites every crontab. So this is CPython's generator exactly:
//! MT19937 seeded by `init_by_array` from the seed (a string through SHA-512, as
//! `random.seed(str)` does since Python 3.2), and `randrange`, `choice` and `shuffle`
//! drawing through `_randbelow` as CPython 3.11 does.

use sha2::{Digest, Sha512};

const N: usize = 624;
const M: usize = 397;

/// A seeded generator that yields what CPython's `random.Random(seed)` yields.
pub struct PyRandom {
    mt: [u32; N],
    index: usize,
}

/// A seed as Python sees it: a string or an integer.
pub enum Seed<'a> {
    Text(&'a str),
    Int(i128),
}

impl PyRandom {
    pub fn new(seed: Seed<'_>) -> PyRandom {
        let key = match seed {
            Seed::Text(text) => {
                // random.seed(str), version 2: the bytes followed by their SHA-512, read as
                // one big-endian integer.
                let mut bytes = text.as_bytes().to_vec();
                bytes.extend_from_slice(&Sha512::digest(text.as_bytes()));
                words_of_big_endian(&bytes)
            }
            Seed::Int(n) => words_of_big_endian(&n.unsigned_abs().to_be_bytes()),
        };
        let mut r = PyRandom {
            mt: [0; N],
            index: N,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, seed: u32) {
        self.mt[0] = seed;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
        }
        self.mt[0] = 0x8000_0000;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            for k in 0..N {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % N] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for k up to 64 (32-bit words, least significant first, the last
    /// one cut to its top bits).
    fn getrandbits(&mut self, k: u32) -> u64 {
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - k));
        low | (high << 32)
    }

    /// `_randbelow(n)`: a uniform number in `0..n` by rejection, as CPython draws it.
    fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `randrange(start, stop, step)`; `None` when the range is empty.
    pub fn randrange(&mut self, start: i64, stop: i64, step: i64) -> Option<i64> {
        let width = stop.checked_sub(start)?;
        let n = match step {
            1 => width,
            s if s > 0 => (width + s - 1) / s,
            s if s < 0 => (width + s + 1) / s,
            _ => return None,
        };
        if n <= 0 {
            return None;
        }
        Some(start + step * self.randbelow(n as u64) as i64)
    }

    /// `choice(seq)`: the index of the chosen item; `None` for an empty sequence.
    pub fn choice(&mut self, len: usize) -> Option<usize> {
        (len > 0).then(|| self.randbelow(len as u64) as usize)
    }

    /// `shuffle(list)` in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A big-endian integer's 32-bit words, least significant first, without the zero words
/// above its highest bit (at least one word), as CPython hands a seed to `init_by_array`.
fn words_of_big_endian(bytes: &[u8]) -> Vec<u32> {
    let mut words: Vec<u32> = bytes
        .rchunks(4)
        .map(|chunk| chunk.iter().fold(0u32, |w, b| (w << 8) | u32::from(*b)))
        .collect();
    while words.len() > 1 && words.last() == Some(&0) {
        words.pop();
    }
    if words.is_empty() {
        words.push(0);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected values were printed by CPython 3.11:
    //   import random
    //   r = random.Random("web1"); [r.randrange(0, 60) for _ in range(5)]
    //   r = random.Random(42); [r.randrange(0, 1000) for _ in range(3)]
    //   r = random.Random("x"); l = ['a','b','c','d','e']; r.shuffle(l); l
    //   random.Random("").randrange(0, 100)
    #[test]
    fn draws_what_cpython_draws() {
        let mut r = PyRandom::new(Seed::Text("web1"));
        let got: Vec<i64> = (0..5).map(|_| r.randrange(0, 60, 1).unwrap()).collect();
        assert_eq!(got, PY_WEB1);
        let mut r = PyRandom::new(Seed::Int(42));
        let got: Vec<i64> = (0..3).map(|_| r.randrange(0, 1000, 1).unwrap()).collect();
        assert_eq!(got, PY_42);
        let mut r = PyRandom::new(Seed::Text("x"));
        let mut list = ["a", "b", "c", "d", "e"];
        r.shuffle(&mut list);
        assert_eq!(list, PY_SHUFFLE_X);
        let mut r = PyRandom::new(Seed::Text(""));
        assert_eq!(r.randrange(0, 100, 1), Some(PY_EMPTY));
    }

    const PY_WEB1: [i64; 5] = [52, 20, 16, 49, 21];
    const PY_42: [i64; 3] = [654, 114, 25];
    const PY_SHUFFLE_X: [&str; 5] = ["e", "b", "a", "d", "c"];
    const PY_EMPTY: i64 = 58;

    #[test]
    fn empty_ranges_and_sequences_have_no_draw() {
        let mut r = PyRandom::new(Seed::Int(1));
        assert_eq!(r.randrange(5, 5, 1), None);
        assert_eq!(r.randrange(0, 10, 0), None);
        assert_eq!(r.choice(0), None);
    }
}
