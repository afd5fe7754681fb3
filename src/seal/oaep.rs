//! RSA public-key encryption with OAEP (RFC 8017, SHA-256 for the label hash and MGF1): the one
//! RSA operation sealing needs, on a fixed-size Montgomery representation of the modulus.
//!
//! Why not a general RSA crate: a public exponent is small (65537: 16 squarings and one
//! multiplication), but a generic modular exponentiation walks a window over the full modulus
//! width, and building a general key precomputes more than encryption uses. Here the key is
//! parsed once into limbs, `R² mod n` comes from a few doublings and six Montgomery squarings,
//! and an encryption is about twenty Montgomery multiplications.
//!
//! The public exponent is public, so the exponentiation may branch on its bits; the message
//! (which carries the session key) is only ever combined in constant time: the Montgomery
//! multiplication's final subtraction is a masked select, not a branch.

/// An RSA public key in the form encryption uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    /// The modulus, little-endian 64-bit limbs.
    n: Vec<u64>,
    /// `-n⁻¹ mod 2⁶⁴`.
    n0_inv: u64,
    /// `R² mod n` with `R = 2^(64·limbs)`.
    rr: Vec<u64>,
    e: u64,
    /// The modulus length in bytes (`k` in RFC 8017).
    bytes: usize,
}

/// Why a key or a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The modulus is even or has fewer than 512 bits, or more than 16384.
    Modulus,
    /// The exponent is even, below 3 or above 2³³−1 (the range RSA libraries accept).
    Exponent,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyError::Modulus => "the modulus is not an odd number of 512 to 16384 bits",
            KeyError::Exponent => "the public exponent is not an odd number from 3 to 2^33-1",
        })
    }
}

const HASH_LEN: usize = 32;

impl PublicKey {
    /// A key from its big-endian modulus and exponent (leading zero bytes allowed).
    pub(crate) fn new(modulus: &[u8], exponent: &[u8]) -> Result<Self, KeyError> {
        let modulus = strip_zeros(modulus);
        let exponent = strip_zeros(exponent);
        if modulus.is_empty() || modulus[modulus.len() - 1] & 1 == 0 {
            return Err(KeyError::Modulus);
        }
        let bits = modulus.len() * 8 - modulus[0].leading_zeros() as usize;
        if !(512..=16384).contains(&bits) {
            return Err(KeyError::Modulus);
        }
        if exponent.is_empty() || exponent.len() > 8 {
            return Err(KeyError::Exponent);
        }
        let e = exponent
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        if !(3..(1 << 33)).contains(&e) || e & 1 == 0 {
            return Err(KeyError::Exponent);
        }
        let n = limbs(modulus, modulus.len().div_ceil(8));
        let n0_inv = neg_inverse(n[0]);
        let rr = r_squared(&n, n0_inv, bits);
        Ok(PublicKey {
            n,
            n0_inv,
            rr,
            e,
            bytes: modulus.len(),
        })
    }

    /// The modulus length in bytes.
    pub(crate) fn size(&self) -> usize {
        self.bytes
    }

    /// RSAES-OAEP-ENCRYPT with SHA-256 and `label`, under the caller's random `seed`.
    /// `None` when `message` is longer than the key allows (`k − 2·32 − 2` bytes).
    pub(crate) fn encrypt_oaep(
        &self,
        message: &[u8],
        label: &[u8],
        seed: &[u8; HASH_LEN],
    ) -> Option<Vec<u8>> {
        let k = self.bytes;
        if message.len() + 2 * HASH_LEN + 2 > k {
            return None;
        }
        // EM = 0x00 || maskedSeed || maskedDB, DB = lHash || PS || 0x01 || M.
        let mut em = zeroize::Zeroizing::new(vec![0u8; k]);
        let (seed_part, db) = em[1..].split_at_mut(HASH_LEN);
        db[..HASH_LEN].copy_from_slice(sha256(&[label]).as_ref());
        let one = db.len() - message.len() - 1;
        db[one] = 1;
        db[one + 1..].copy_from_slice(message);
        mgf1_xor(seed, db);
        seed_part.copy_from_slice(seed);
        mgf1_xor(db, seed_part);
        Some(self.raw_encrypt(&em))
    }

    /// `m^e mod n` for a big-endian `m < n` of `k` bytes, as `k` big-endian bytes.
    fn raw_encrypt(&self, m: &[u8]) -> Vec<u8> {
        let len = self.n.len();
        let m = zeroize::Zeroizing::new(limbs(m, len));
        let mut t = zeroize::Zeroizing::new(vec![0u64; len + 2]);
        // In Montgomery form: x·R mod n.
        let mut base = zeroize::Zeroizing::new(vec![0u64; len]);
        mont_mul(&m, &self.rr, &self.n, self.n0_inv, &mut t, &mut base);
        let mut acc = zeroize::Zeroizing::new(base.to_vec());
        let mut tmp = zeroize::Zeroizing::new(vec![0u64; len]);
        let top = 63 - self.e.leading_zeros();
        for bit in (0..top).rev() {
            mont_mul(&acc, &acc, &self.n, self.n0_inv, &mut t, &mut tmp);
            std::mem::swap(&mut acc, &mut tmp);
            if (self.e >> bit) & 1 == 1 {
                mont_mul(&acc, &base, &self.n, self.n0_inv, &mut t, &mut tmp);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        // Out of Montgomery form: multiply by 1.
        let mut unit = vec![0u64; len];
        unit[0] = 1;
        mont_mul(&acc, &unit, &self.n, self.n0_inv, &mut t, &mut tmp);
        let mut out = vec![0u8; self.bytes];
        for (i, byte) in out.iter_mut().rev().enumerate() {
            *byte = (tmp[i / 8] >> (8 * (i % 8))) as u8;
        }
        out
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// Big-endian bytes into `len` little-endian limbs (the bytes must fit).
fn limbs(be: &[u8], len: usize) -> Vec<u64> {
    let mut out = vec![0u64; len];
    for (i, byte) in be.iter().rev().enumerate() {
        out[i / 8] |= u64::from(*byte) << (8 * (i % 8));
    }
    out
}

/// `-x⁻¹ mod 2⁶⁴` for odd `x` (Newton's iteration doubles the correct bits: 3, 6, ..., 96).
fn neg_inverse(x: u64) -> u64 {
    let mut inv = x;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(x.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// `R² mod n`: `2^(bits−1)` (below `n`) doubled up to `R·2^len mod n`, then squared six times in
/// Montgomery form (each squaring of `R·2^s` gives `R·2^(2s)`): `R·2^(64·len) = R²`.
fn r_squared(n: &[u64], n0_inv: u64, bits: usize) -> Vec<u64> {
    let len = n.len();
    let mut x = vec![0u64; len];
    x[(bits - 1) / 64] = 1 << ((bits - 1) % 64);
    for _ in 0..(64 * len + len - (bits - 1)) {
        let mut carry = 0;
        for limb in x.iter_mut() {
            let next = *limb >> 63;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry == 1 || !less_than(&x, n) {
            sub_in_place(&mut x, n);
        }
    }
    let mut t = vec![0u64; len + 2];
    let mut y = vec![0u64; len];
    for _ in 0..6 {
        mont_mul(&x, &x, n, n0_inv, &mut t, &mut y);
        std::mem::swap(&mut x, &mut y);
    }
    x
}

fn less_than(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a −= b` modulo `2^(64·len)`; returns the borrow.
fn sub_in_place(a: &mut [u64], b: &[u64]) -> u64 {
    let mut borrow = 0u64;
    for (x, y) in a.iter_mut().zip(b) {
        let (d, b1) = x.overflowing_sub(*y);
        let (d, b2) = d.overflowing_sub(borrow);
        *x = d;
        borrow = u64::from(b1 | b2);
    }
    borrow
}

/// `acc + x·y + carry` as (low, high): never overflows 128 bits.
#[inline(always)]
fn mac(acc: u64, x: u64, y: u64, carry: u64) -> (u64, u64) {
    let wide = u128::from(acc) + u128::from(x) * u128::from(y) + u128::from(carry);
    (wide as u64, (wide >> 64) as u64)
}

/// `out = a·b·R⁻¹ mod n` for `a, b < n` (CIOS); `t` is scratch of `len + 2` limbs. The result is
/// below `n`, its last subtraction chosen by a mask.
fn mont_mul(a: &[u64], b: &[u64], n: &[u64], n0_inv: u64, t: &mut [u64], out: &mut [u64]) {
    let len = n.len();
    // Slices of known length: the loops below then run without bounds checks (about 30%
    // faster for 4096 bits).
    let (a, n, t) = (&a[..len], &n[..len], &mut t[..len + 2]);
    t.fill(0);
    for &bi in b {
        let mut carry = 0;
        for (tj, aj) in t[..len].iter_mut().zip(a) {
            (*tj, carry) = mac(*tj, *aj, bi, carry);
        }
        let (s, over) = t[len].overflowing_add(carry);
        t[len] = s;
        t[len + 1] = u64::from(over);
        let m = t[0].wrapping_mul(n0_inv);
        let (_, mut carry) = mac(t[0], m, n[0], 0);
        for j in 1..len {
            (t[j - 1], carry) = mac(t[j], m, n[j], carry);
        }
        let (s, over) = t[len].overflowing_add(carry);
        t[len - 1] = s;
        t[len] = t[len + 1] + u64::from(over);
    }
    // t < 2n: subtract n when t ≥ n (a carry limb set, or no borrow).
    out.copy_from_slice(&t[..len]);
    let borrow = sub_in_place(out, n);
    let keep_difference = (t[len] | (borrow ^ 1)) & 1;
    let mask = keep_difference.wrapping_neg();
    for (o, orig) in out.iter_mut().zip(&t[..len]) {
        *o = (*o & mask) | (*orig & !mask);
    }
}

fn sha256(parts: &[&[u8]]) -> ring::digest::Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    ctx.finish()
}

/// `target ^= MGF1-SHA-256(seed, target.len())`.
fn mgf1_xor(seed: &[u8], target: &mut [u8]) {
    for (counter, chunk) in target.chunks_mut(HASH_LEN).enumerate() {
        let counter = u32::try_from(counter).expect("masks are far below 2^32 blocks");
        let mask = sha256(&[seed, &counter.to_be_bytes()]);
        for (t, m) in chunk.iter_mut().zip(mask.as_ref()) {
            *t ^= m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::traits::PublicKeyParts;

    fn ours(key: &rsa::RsaPublicKey) -> PublicKey {
        PublicKey::new(&key.n().to_be_bytes(), &key.e().to_be_bytes()).unwrap()
    }

    /// An RNG that hands out fixed bytes: the rsa crate's OAEP then uses our seed.
    struct Fixed(Vec<u8>);
    impl rsa::rand_core::TryRng for Fixed {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            unreachable!("OAEP asks for bytes")
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            unreachable!("OAEP asks for bytes")
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            let n = dst.len();
            dst.copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(())
        }
    }
    impl rsa::rand_core::TryCryptoRng for Fixed {}

    fn keys() -> Vec<rsa::RsaPrivateKey> {
        let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
        // 2048 (a power-of-two limb count), 3072 (not one) and 2050 bits (a partial top limb).
        [2048, 3072, 2050]
            .into_iter()
            .map(|bits| rsa::RsaPrivateKey::new(&mut rng, bits).unwrap())
            .collect()
    }

    #[test]
    fn same_bytes_as_the_rsa_crate_for_the_same_seed() {
        for key in keys() {
            let public = key.to_public_key();
            let k = ours(&public);
            assert_eq!(k.size(), public.size());
            for (message, label) in [
                (&[7u8; 32][..], &b"namespace/name"[..]),
                (&b""[..], &b""[..]),
                (&[0xffu8; 32][..], &b"namespace"[..]),
            ] {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).unwrap();
                let expected = public
                    .encrypt(
                        &mut rsa::rand_core::UnwrapErr(Fixed(seed.to_vec())),
                        rsa::Oaep::<sha2::Sha256>::new_with_label(label),
                        message,
                    )
                    .unwrap();
                let got = k.encrypt_oaep(message, label, &seed).unwrap();
                assert_eq!(got, expected, "{} bits", public.size() * 8);
                let opened = key
                    .decrypt(rsa::Oaep::<sha2::Sha256>::new_with_label(label), &got)
                    .unwrap();
                assert_eq!(opened, message);
            }
        }
    }

    #[test]
    fn raw_power_matches_for_other_exponents() {
        let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
        for e in [3u64, 17, 0x1_0000_0001] {
            let key =
                rsa::RsaPrivateKey::new_with_exp(&mut rng, 1024, rsa::BoxedUint::from(e)).unwrap();
            let public = key.to_public_key();
            let k = ours(&public);
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).unwrap();
            let expected = public
                .encrypt(
                    &mut rsa::rand_core::UnwrapErr(Fixed(seed.to_vec())),
                    rsa::Oaep::<sha2::Sha256>::new_with_label(&b"x"[..]),
                    b"message",
                )
                .unwrap();
            assert_eq!(
                k.encrypt_oaep(b"message", b"x", &seed).unwrap(),
                expected,
                "e={e}"
            );
        }
    }

    #[test]
    fn refuses_bad_keys_and_long_messages() {
        let odd = [0x80u8; 256];
        let mut even = odd;
        even[255] = 0x80 & !1;
        assert_eq!(PublicKey::new(&even, &[1, 0, 1]), Err(KeyError::Modulus));
        let mut modulus = odd;
        modulus[255] = 0x81;
        assert_eq!(
            PublicKey::new(&modulus[..32], &[1, 0, 1]),
            Err(KeyError::Modulus)
        );
        for e in [&[1u8][..], &[2], &[1, 0, 0], &[0x02, 0, 0, 0, 1], &[]] {
            assert_eq!(
                PublicKey::new(&modulus, e),
                Err(KeyError::Exponent),
                "{e:?}"
            );
        }
        let key = PublicKey::new(&[&[0u8][..], &modulus].concat(), &[0, 1, 0, 1]).unwrap();
        assert_eq!(key.size(), 256);
        assert!(key.encrypt_oaep(&[0; 256 - 66], b"", &[0; 32]).is_some());
        assert!(key.encrypt_oaep(&[0; 256 - 65], b"", &[0; 32]).is_none());
    }

    #[test]
    fn montgomery_helpers() {
        for x in [1u64, 3, 0xffff_ffff_ffff_ffff, 0x1234_5678_9abc_def1] {
            assert_eq!(x.wrapping_mul(neg_inverse(x)), u64::MAX, "{x:#x}");
        }
        // n = 2^64 + 13 (two limbs): R² mod n for R = 2^128, by u128 arithmetic on 2^128 ≡ ...
        let n = [13u64, 1];
        let bits = 65;
        let rr = r_squared(&n, neg_inverse(13), bits);
        // 2^64 ≡ -13 (mod n), so R² = 2^256 = (2^64)^4 ≡ 13^4 = 28561.
        assert_eq!(rr, vec![28561, 0]);
    }
}
