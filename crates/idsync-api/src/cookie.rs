//! Signed paging cookies (docs/SECURITY.md): a `_pagedResultsCookie` handed to a client is the
//! backend's own cookie followed by `.` and an HMAC-SHA256 over it and the query it belongs to
//! (the resource, the filter and the sort keys). A cookie that was changed, made up, issued by
//! another server, or brought to another query is a 400 before anything reaches the backend, so
//! the backends only ever see cookies they wrote themselves.
//!
//! The key is made once per repository (`Repository::shared_key`), so every node of a cluster
//! accepts the cookies of the others, and cookies survive restarts.

use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;
use base64::Engine;
use idsync_core::QueryRequest;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The repository's name of the key.
pub const KEY_NAME: &str = "pagedResultsCookie";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a cookie is bound to: the resource and the query's position-defining parts. `_fields`,
/// `_pageSize` and `_totalPagedResultsPolicy` may change from page to page.
pub fn binding(scope: &str, req: &QueryRequest) -> String {
    let filter = req
        .filter
        .as_ref()
        .map_or_else(|| "true".to_string(), ToString::to_string);
    let keys: Vec<String> = req
        .sort_keys
        .iter()
        .map(|k| format!("{}{}", if k.ascending { '+' } else { '-' }, k.field))
        .collect();
    format!("{scope}\n{filter}\n{}", keys.join(","))
}

/// The cookie a client gets for the backend's `inner` cookie.
pub fn seal(key: &[u8], binding: &str, inner: &str) -> String {
    format!("{inner}.{}", B64.encode(mac(key, binding, inner)))
}

/// The backend's cookie inside `cookie`, if `cookie` is one [`seal`] made for `binding`.
pub fn open(key: &[u8], binding: &str, cookie: &str) -> ApiResult<String> {
    let refused = || {
        ApiError::BadRequest(
            "invalid _pagedResultsCookie: it was not issued by this server for this query".into(),
        )
    };
    let (inner, tag) = cookie.trim().rsplit_once('.').ok_or_else(refused)?;
    let tag = B64.decode(tag).map_err(|_| refused())?;
    if bool::from(tag.as_slice().ct_eq(&mac(key, binding, inner))) {
        Ok(inner.to_string())
    } else {
        Err(refused())
    }
}

/// The state's cookie key: read from (or first stored in) the repository on first use.
pub async fn key(state: &ApiState) -> ApiResult<&[u8]> {
    let key = state
        .cookie_key
        .get_or_try_init(|| async {
            let candidate: [u8; 32] = rand::random();
            state.repo.shared_key(KEY_NAME, &candidate).await
        })
        .await?;
    Ok(key.as_slice())
}

/// Replaces a client's cookie in `req` by the backend's, or refuses it.
pub async fn open_request(state: &ApiState, scope: &str, req: &mut QueryRequest) -> ApiResult<()> {
    if let Some(c) = req.cookie.take() {
        let key = key(state).await?;
        req.cookie = Some(open(key, &binding(scope, req), &c)?);
    }
    Ok(())
}

/// Signs the backend's next-page cookie of a page answering `req`.
pub async fn seal_page(
    state: &ApiState,
    scope: &str,
    req: &QueryRequest,
    cookie: &mut Option<String>,
) -> ApiResult<()> {
    if let Some(c) = cookie.take() {
        let key = key(state).await?;
        *cookie = Some(seal(key, &binding(scope, req), &c));
    }
    Ok(())
}

/// HMAC-SHA256 (RFC 2104) of `binding`, a NUL and `inner`.
fn mac(key: &[u8], binding: &str, inner: &str) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner_hash = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(binding.as_bytes())
        .chain_update([0u8])
        .chain_update(inner.as_bytes())
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner_hash)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use idsync_core::SortKey;

    fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
        // `mac` signs binding ++ NUL ++ inner: split the data at its first NUL.
        let at = data
            .iter()
            .position(|b| *b == 0)
            .expect("a NUL in the data");
        mac(
            key,
            std::str::from_utf8(&data[..at]).unwrap(),
            std::str::from_utf8(&data[at + 1..]).unwrap(),
        )
    }

    /// The construction is HMAC-SHA256: checked against Python's `hmac` for a short key and a
    /// key longer than the block (hashed first).
    #[test]
    fn mac_is_hmac_sha256() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"key",b"a\0b",hashlib.sha256).hexdigest())'
        // (and b"\xaa"*131 as the key, b"x\0y" as the data, for the long key)
        let short = hmac(b"key", b"a\0b");
        assert_eq!(
            hex(&short),
            "29c5f0eea2d0a51b661193b3a56191192b2861f543ea0499a7f9725f7e7062fc"
        );
        let long = hmac(&[0xaa; 131], b"x\0y");
        assert_eq!(
            hex(&long),
            "7f14314d5664e44b611d41f07be303f77b2e11c32359536af62b698969a06f10"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn req(filter: &str, keys: &str) -> QueryRequest {
        QueryRequest {
            filter: Some(idsync_core::filter::parse(filter).unwrap()),
            sort_keys: SortKey::parse_list(keys),
            ..QueryRequest::default()
        }
    }

    #[test]
    fn a_sealed_cookie_opens_only_for_its_key_and_query() {
        let key = [7u8; 32];
        let b = binding("managed/user", &req("sn eq \"x\"", "sn,-mail"));
        let sealed = seal(&key, &b, "eyJrIjpbXX0");
        assert_eq!(open(&key, &b, &sealed).unwrap(), "eyJrIjpbXX0");
        // Another key (another server), query, resource or a changed cookie: refused.
        assert!(open(&[8u8; 32], &b, &sealed).is_err());
        let other_query = binding("managed/user", &req("sn eq \"y\"", "sn,-mail"));
        assert!(open(&key, &other_query, &sealed).is_err());
        let other_keys = binding("managed/user", &req("sn eq \"x\"", "sn,mail"));
        assert!(open(&key, &other_keys, &sealed).is_err());
        assert!(
            open(
                &key,
                &binding("managed/role", &req("sn eq \"x\"", "sn,-mail")),
                &sealed
            )
            .is_err()
        );
        let tampered = sealed.replacen("eyJ", "eyK", 1);
        assert!(open(&key, &b, &tampered).is_err());
        for bad in [
            "",
            ".",
            "abc",
            "eyJrIjpbXX0",
            "eyJrIjpbXX0.",
            "eyJrIjpbXX0.!!",
        ] {
            assert!(open(&key, &b, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_page_size_and_policy_do_not_change_the_binding() {
        let mut a = req("true", "sn");
        let b = binding("managed/user", &a);
        a.fields = Some(vec![idsync_core::JsonPointer::parse("mail")]);
        a.page_size = Some(3);
        a.total_policy = idsync_core::TotalPolicy::Exact;
        assert_eq!(binding("managed/user", &a), b);
    }
}
