//! The AES256 vault cipher, as ansible-vault implements it: PBKDF2-HMAC-SHA256 (10000
//! rounds) derives 80 bytes from the password and a random 32-byte salt: an AES-256 key,
//! an HMAC-SHA256 key and the 16-byte initial counter. The plaintext is PKCS#7-padded to
//! the AES block, encrypted in CTR mode, and the HMAC covers the ciphertext.
//!
//! The payload is `hex(salt) \n hex(hmac) \n hex(ciphertext)`, hex-encoded once more
//! (a historical quirk of the format that ansible-vault keeps for compatibility).

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// PBKDF2 rounds ansible-vault uses.
const ROUNDS: u32 = 10_000;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
const SALT_LEN: usize = 32;
const BLOCK: usize = 16;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// Why a payload could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The HMAC does not match: the password is wrong (or the data was altered).
    #[error("the vault password is wrong (HMAC verification failed)")]
    BadPassword,
    #[error("malformed vault data: {0}")]
    Malformed(&'static str),
}

struct Keys {
    aes: [u8; KEY_LEN],
    mac: [u8; KEY_LEN],
    iv: [u8; IV_LEN],
}

fn derive(password: &[u8], salt: &[u8]) -> Keys {
    let mut out = [0u8; 2 * KEY_LEN + IV_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ROUNDS, &mut out);
    let mut k = Keys {
        aes: [0; KEY_LEN],
        mac: [0; KEY_LEN],
        iv: [0; IV_LEN],
    };
    k.aes.copy_from_slice(&out[..KEY_LEN]);
    k.mac.copy_from_slice(&out[KEY_LEN..2 * KEY_LEN]);
    k.iv.copy_from_slice(&out[2 * KEY_LEN..]);
    k
}

fn keystream(keys: &Keys, data: &mut [u8]) {
    let mut c = Aes256Ctr::new(&keys.aes.into(), &keys.iv.into());
    c.apply_keystream(data);
}

fn mac(keys: &Keys) -> Hmac<Sha256> {
    // An HMAC accepts keys of any length; 32 bytes never fails.
    <Hmac<Sha256> as Mac>::new_from_slice(&keys.mac).expect("HMAC takes any key length")
}

/// Encrypts with a fresh random salt; returns the (doubly hex-encoded) payload.
pub fn encrypt(plaintext: &[u8], password: &[u8]) -> String {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    encrypt_with_salt(plaintext, password, &salt)
}

/// Encrypts with a given salt (deterministic: for tests against known vectors).
pub fn encrypt_with_salt(plaintext: &[u8], password: &[u8], salt: &[u8]) -> String {
    let keys = derive(password, salt);
    let pad = BLOCK - plaintext.len() % BLOCK;
    let mut data = plaintext.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    keystream(&keys, &mut data);
    let mut m = mac(&keys);
    m.update(&data);
    let tag = m.finalize().into_bytes();
    let inner = format!(
        "{}\n{}\n{}",
        hex::encode(salt),
        hex::encode(tag),
        hex::encode(&data)
    );
    hex::encode(inner)
}

/// Decrypts a payload; the HMAC is checked (in constant time) before anything else.
pub fn decrypt(payload: &str, password: &[u8]) -> Result<Vec<u8>, CipherError> {
    let inner = hex::decode(payload.trim()).map_err(|_| CipherError::Malformed("not hex"))?;
    let inner = String::from_utf8(inner).map_err(|_| CipherError::Malformed("not text"))?;
    let mut parts = inner.splitn(3, '\n');
    let (Some(salt), Some(tag), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CipherError::Malformed("expected salt, hmac and ciphertext"));
    };
    let salt = hex::decode(salt.trim()).map_err(|_| CipherError::Malformed("salt is not hex"))?;
    let tag = hex::decode(tag.trim()).map_err(|_| CipherError::Malformed("hmac is not hex"))?;
    let mut data =
        hex::decode(data.trim()).map_err(|_| CipherError::Malformed("ciphertext is not hex"))?;
    let keys = derive(password, &salt);
    let mut m = mac(&keys);
    m.update(&data);
    m.verify_slice(&tag).map_err(|_| CipherError::BadPassword)?;
    keystream(&keys, &mut data);
    let pad = *data
        .last()
        .ok_or(CipherError::Malformed("empty ciphertext"))? as usize;
    if pad == 0
        || pad > BLOCK
        || pad > data.len()
        || !data[data.len() - pad..].iter().all(|&b| b as usize == pad)
    {
        return Err(CipherError::Malformed("bad padding"));
    }
    data.truncate(data.len() - pad);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_password() {
        for text in [
            &b""[..],
            b"a",
            b"exactly sixteen!",
            b"secret: value\nline two\n",
        ] {
            let payload = encrypt(text, b"pw");
            assert_eq!(decrypt(&payload, b"pw").unwrap(), text);
            assert_eq!(decrypt(&payload, b"other"), Err(CipherError::BadPassword));
        }
    }

    /// Made by `ansible-vault encrypt_string` (ansible-core 2.19) with the password `pw`.
    const FROM_ANSIBLE: &str = "\
65633035306364373339626136363031356232306430316666393661643039323532363431336139\
3435353938363362343634313564633065396338323538640a383933383636373638356538663937\
62356531363234643831366661393466306631333039636139646264653462313064333061393164\
3664633330396135350a306234643466376464336134303031306465353161303730343031373434\
35333961663663326435356466333434323139316262353738373865616166366634";

    #[test]
    fn decrypts_what_ansible_vault_wrote() {
        assert_eq!(
            decrypt(FROM_ANSIBLE, b"pw").unwrap(),
            b"made by ansible-vault"
        );
        assert_eq!(decrypt(FROM_ANSIBLE, b"pW"), Err(CipherError::BadPassword));
    }

    #[test]
    fn salt_makes_each_encryption_different() {
        assert_ne!(encrypt(b"x", b"pw"), encrypt(b"x", b"pw"));
        assert_eq!(
            encrypt_with_salt(b"x", b"pw", b"0123456789abcdef0123456789abcdef"),
            encrypt_with_salt(b"x", b"pw", b"0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        assert!(matches!(
            decrypt("zz", b"pw"),
            Err(CipherError::Malformed(_))
        ));
        assert!(matches!(
            decrypt(&hex::encode("a\nb"), b"pw"),
            Err(CipherError::Malformed(_))
        ));
    }
}
