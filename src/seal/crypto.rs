//! The hybrid scheme sealed-secrets uses for every value, and the keys it uses.
//!
//! A value is sealed with a fresh 32-byte session key: the session key goes through RSA-OAEP
//! (SHA-256 for both the label hash and MGF1, the scope label as OAEP label), the value through
//! AES-256-GCM under the session key with an all-zero 12-byte nonce (safe: the key is used
//! once) and no additional data. The sealed bytes are
//! `u16 big-endian length of the RSA part || RSA part || AES-GCM ciphertext and tag`.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use rsa::Oaep;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::Error;
use super::oaep;

const SESSION_KEY_BYTES: usize = 32;
const NONCE: [u8; 12] = [0; 12];

/// The public half of a sealed-secrets controller's key, taken from its certificate.
///
/// Only RSA keys in certificates that have not expired are accepted, as kubeseal does.
#[derive(Clone, PartialEq)]
pub struct SealingKey {
    key: oaep::PublicKey,
    not_after: SystemTime,
    subject: String,
    fingerprint: String,
    /// The certificate's DER bytes.
    der: Vec<u8>,
}

/// The smallest RSA modulus accepted, in bits: smaller keys are within reach of factoring.
pub const MIN_RSA_BITS: usize = 2048;

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("subject", &self.subject)
            .field("bits", &(self.key.size() * 8))
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl SealingKey {
    /// Reads the first certificate of a PEM bundle and checks it is an RSA certificate valid
    /// now. `from` names where the PEM came from (a file, a URL, a cluster) for error messages.
    pub fn from_pem(pem: &[u8], from: &str) -> Result<Self, Error> {
        Self::from_pem_at(pem, from, SystemTime::now())
    }

    /// [`SealingKey::from_pem`], judging expiry at `now`.
    pub fn from_pem_at(pem: &[u8], from: &str, now: SystemTime) -> Result<Self, Error> {
        let bad = |detail: String| Error::Certificate {
            from: from.to_string(),
            detail,
        };
        let cert_pem = x509_parser::pem::Pem::iter_from_buffer(pem)
            .filter_map(Result::ok)
            .find(|p| p.label == "CERTIFICATE")
            .ok_or_else(|| {
                bad("no PEM `CERTIFICATE` block found: expected the controller's cert.pem".into())
            })?;
        let cert = cert_pem
            .parse_x509()
            .map_err(|e| bad(format!("the certificate does not parse ({e})")))?;
        let not_before = cert.validity().not_before;
        let not_before_time = UNIX_EPOCH
            + std::time::Duration::from_secs(not_before.timestamp().max(0).unsigned_abs());
        if now < not_before_time {
            return Err(Error::CertificateNotYetValid {
                from: from.to_string(),
                not_before: not_before.to_string(),
            });
        }
        let not_after = cert.validity().not_after;
        let not_after_time = UNIX_EPOCH
            + std::time::Duration::from_secs(not_after.timestamp().max(0).unsigned_abs());
        if now > not_after_time {
            return Err(Error::CertificateExpired {
                from: from.to_string(),
                not_after: not_after.to_string(),
            });
        }
        let spki = cert.public_key();
        let algorithm = spki.algorithm.algorithm.to_id_string();
        if algorithm != RSA_ENCRYPTION_OID {
            return Err(Error::CertificateNotRsa {
                from: from.to_string(),
                algorithm: algorithm_name(&algorithm),
            });
        }
        let key = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                oaep::PublicKey::new(rsa.modulus, rsa.exponent)
                    .map_err(|e| bad(format!("its RSA public key is unusable: {e}")))?
            }
            Ok(_) => return Err(bad("its RSA public key does not parse".into())),
            Err(e) => return Err(bad(format!("its RSA public key does not parse ({e})"))),
        };
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(Error::CertificateKeyTooSmall {
                from: from.to_string(),
                bits,
            });
        }
        Ok(SealingKey {
            key,
            not_after: not_after_time,
            subject: cert.subject().to_string(),
            fingerprint: fingerprint(&cert_pem.contents),
            der: cert_pem.contents.clone(),
        })
    }

    /// The certificate as PEM (one `CERTIFICATE` block, 64 characters a line), as the
    /// controller serves it and `kubeseal --fetch-cert` prints it.
    pub fn certificate_pem(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// When the certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The certificate's subject, e.g. `O=sealed-secret, CN=sealed-secret`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The SHA-256 fingerprint of the certificate's DER bytes, as `openssl x509 -fingerprint
    /// -sha256` prints it (upper-case hex pairs joined by `:`), for the user to compare with the
    /// controller's.
    pub fn fingerprint_sha256(&self) -> &str {
        &self.fingerprint
    }

    /// Seals `plaintext` under `label` (see [`super::Scope::label`]): kubeseal's byte layout.
    pub fn encrypt(&self, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>, Error> {
        // One draw: the session key, then the OAEP seed.
        let mut random = Zeroizing::new([0u8; SESSION_KEY_BYTES + 32]);
        getrandom::fill(&mut random[..]).map_err(|e| Error::Random(e.to_string()))?;
        let (session, seed) = random.split_at(SESSION_KEY_BYTES);
        let seed: &[u8; 32] = seed.try_into().expect("32 bytes");
        let rsa_part = self
            .key
            .encrypt_oaep(session, label, seed)
            .ok_or_else(|| Error::Encrypt("the RSA key is too small for the session key".into()))?;
        let len = u16::try_from(rsa_part.len())
            .map_err(|_| Error::Encrypt("RSA key larger than 524280 bits".into()))?;
        let cipher = aes_key(session).ok_or_else(|| Error::Encrypt("session key length".into()))?;
        let mut out = Vec::with_capacity(2 + rsa_part.len() + plaintext.len() + 16);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&rsa_part);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(NONCE),
                Aad::empty(),
                &mut out[start..],
            )
            .map_err(|_| Error::Encrypt("AES-GCM refused the value".into()))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }
}

const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// AES-256-GCM under a session key (`None` unless it is 32 bytes). The nonce is all zeros: each
/// key seals one value.
fn aes_key(session: &[u8]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, session)
        .ok()
        .map(LessSafeKey::new)
}

fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.2.1" => "ECDSA".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        "1.2.840.113549.1.1.10" => "RSA-PSS".into(),
        other => format!("OID {other}"),
    }
}

/// The private half of a controller's key: for disaster recovery (unsealing offline with a
/// backup of the controller's key Secret) and for checking sealed output in tests.
pub struct UnsealingKey {
    key: rsa::RsaPrivateKey,
}

impl fmt::Debug for UnsealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsealingKey").finish_non_exhaustive()
    }
}

impl UnsealingKey {
    /// Reads a PEM private key: PKCS#1 (`RSA PRIVATE KEY`, what the controller stores in
    /// `tls.key`) or PKCS#8 (`PRIVATE KEY`).
    pub fn from_pem(pem: &[u8], from: &str) -> Result<Self, Error> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let text = std::str::from_utf8(pem).map_err(|_| Error::PrivateKey {
            from: from.to_string(),
            detail: "not PEM text".into(),
        })?;
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(text)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(text))
            .map_err(|e| Error::PrivateKey {
                from: from.to_string(),
                detail: format!("neither a PKCS#1 nor a PKCS#8 RSA key ({e})"),
            })?;
        Ok(UnsealingKey { key })
    }

    /// Opens a sealed value; fails when the label (scope, namespace, name) or key differ.
    pub fn decrypt(&self, sealed: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < 2 {
            return Err(Error::Decrypt("shorter than its length prefix".into()));
        }
        let rsa_len = usize::from(u16::from_be_bytes([sealed[0], sealed[1]]));
        if sealed.len() < 2 + rsa_len {
            return Err(Error::Decrypt("shorter than its RSA part".into()));
        }
        let (rsa_part, aes_part) = sealed[2..].split_at(rsa_len);
        let session = Zeroizing::new(
            self.key
                .decrypt_blinded(
                    &mut rsa::rand_core::UnwrapErr(getrandom::SysRng),
                    Oaep::<Sha256>::new_with_label(label),
                    rsa_part,
                )
                .map_err(|_| {
                    Error::Decrypt("RSA-OAEP failed: another key, or another scope label".into())
                })?,
        );
        let cipher = aes_key(&session)
            .ok_or_else(|| Error::Decrypt("session key is not 32 bytes".into()))?;
        let mut value = Zeroizing::new(aes_part.to_vec());
        let len = cipher
            .open_in_place(
                Nonce::assume_unique_for_key(NONCE),
                Aad::empty(),
                &mut value[..],
            )
            .map_err(|_| Error::Decrypt("AES-GCM authentication failed".into()))?
            .len();
        value.truncate(len);
        Ok(value)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throwaway 2048-bit key and a self-signed certificate for it, made once per test run.
    pub(crate) fn test_keys() -> &'static (String, String) {
        static KEYS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            use rsa::pkcs8::EncodePrivateKey;
            let key =
                rsa::RsaPrivateKey::new(&mut rsa::rand_core::UnwrapErr(getrandom::SysRng), 2048)
                    .unwrap();
            let pem = key.to_pkcs8_pem(Default::default()).unwrap().to_string();
            let kp = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
                .unwrap();
            let cert = rcgen::CertificateParams::new(vec!["sealed-secret".into()])
                .unwrap()
                .self_signed(&kp)
                .unwrap();
            (cert.pem(), pem)
        })
    }

    /// A certificate for `key` (any size: the issuer signs it, not `key`).
    fn self_signed_rsa(key: &rsa::RsaPrivateKey) -> String {
        struct Public(Vec<u8>);
        impl rcgen::PublicKeyData for Public {
            fn der_bytes(&self) -> &[u8] {
                &self.0
            }
            fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
                &rcgen::PKCS_RSA_SHA256
            }
        }
        use rsa::pkcs1::EncodeRsaPublicKey;
        let public = Public(key.to_public_key().to_pkcs1_der().unwrap().into_vec());
        let issuer_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let issuer = rcgen::Issuer::new(
            rcgen::CertificateParams::new(vec!["issuer".into()]).unwrap(),
            issuer_key,
        );
        rcgen::CertificateParams::new(vec!["sealed-secret".into()])
            .unwrap()
            .signed_by(&public, &issuer)
            .unwrap()
            .pem()
    }

    #[test]
    fn round_trips_and_binds_the_label() {
        let (cert, key) = test_keys();
        let sealing = SealingKey::from_pem(cert.as_bytes(), "test").unwrap();
        let unsealing = UnsealingKey::from_pem(key.as_bytes(), "test").unwrap();
        let sealed = sealing.encrypt(b"s3cr3t", b"ns/name").unwrap();
        assert_eq!(
            usize::from(u16::from_be_bytes([sealed[0], sealed[1]])),
            256,
            "2048-bit RSA part"
        );
        assert_eq!(sealed.len(), 2 + 256 + 6 + 16, "GCM adds a 16-byte tag");
        assert_eq!(
            &unsealing.decrypt(&sealed, b"ns/name").unwrap()[..],
            b"s3cr3t"
        );
        assert!(unsealing.decrypt(&sealed, b"ns/other").is_err());
        assert!(unsealing.decrypt(&sealed, b"").is_err());
        assert!(unsealing.decrypt(&sealed[..100], b"ns/name").is_err());
        let again = sealing.encrypt(b"s3cr3t", b"ns/name").unwrap();
        assert_ne!(
            sealed, again,
            "a fresh session key and OAEP seed every time"
        );
    }

    #[test]
    fn empty_label_is_cluster_wide() {
        let (cert, key) = test_keys();
        let sealing = SealingKey::from_pem(cert.as_bytes(), "test").unwrap();
        let unsealing = UnsealingKey::from_pem(key.as_bytes(), "test").unwrap();
        let sealed = sealing.encrypt(b"", b"").unwrap();
        assert!(unsealing.decrypt(&sealed, b"").unwrap().is_empty());
    }

    #[test]
    fn rejects_expired_and_non_rsa_certificates() {
        let (cert, _) = test_keys();
        let key = SealingKey::from_pem(cert.as_bytes(), "c.pem").unwrap();
        let later = key.not_after() + std::time::Duration::from_secs(1);
        let e = SealingKey::from_pem_at(cert.as_bytes(), "c.pem", later).unwrap_err();
        assert!(
            e.to_string().starts_with("certificate c.pem expired on "),
            "{e}"
        );

        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ec = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        let e = SealingKey::from_pem(ec.pem().as_bytes(), "ec.pem").unwrap_err();
        assert!(e.to_string().contains("ECDSA key, not RSA"), "{e}");

        let e = SealingKey::from_pem(b"hello", "junk").unwrap_err();
        assert!(e.to_string().contains("no PEM `CERTIFICATE` block"), "{e}");
    }

    #[test]
    fn rejects_small_rsa_keys_and_certificates_not_yet_valid() {
        let (cert, _) = test_keys();
        let key = SealingKey::from_pem(cert.as_bytes(), "c.pem").unwrap();
        let e = SealingKey::from_pem_at(cert.as_bytes(), "c.pem", UNIX_EPOCH).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("certificate c.pem is not valid before "),
            "{e}"
        );
        assert!(key.not_after() > SystemTime::now());

        let small =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::UnwrapErr(getrandom::SysRng), 1024)
                .unwrap();
        let pem = self_signed_rsa(&small);
        let e = SealingKey::from_pem(pem.as_bytes(), "small.pem").unwrap_err();
        assert_eq!(
            e.to_string(),
            "certificate small.pem holds a 1024-bit RSA key: sealed-secrets keys are 4096 bits and at least 2048 are needed; is this the controller's cert.pem?"
        );
    }

    #[test]
    fn fingerprint_is_sha256_of_the_der() {
        use sha2::Digest;
        let (cert, _) = test_keys();
        let key = SealingKey::from_pem(cert.as_bytes(), "c.pem").unwrap();
        let der = x509_parser::pem::Pem::iter_from_buffer(cert.as_bytes())
            .next()
            .unwrap()
            .unwrap()
            .contents;
        let hex: String = Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(key.fingerprint_sha256().replace(':', ""), hex);
        assert_eq!(key.fingerprint_sha256().len(), 32 * 3 - 1);
    }
}
