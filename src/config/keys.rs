//! Encryption keys as written in the settings: base64 of 32 bytes, or a
//! list of numbered key-encryption keys.

use base64::Engine;

/// `MCP_BROKER_ENCRYPTION_KEY`: standard or URL-safe base64 of 32 bytes.
pub fn decode_key(value: &str) -> Result<[u8; 32], String> {
    let value = value.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value))
        .map_err(|_| {
            "must be base64 of 32 random bytes (try `openssl rand -base64 32`)".to_string()
        })?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("must decode to 32 bytes, got {}", b.len()))
}

/// `"2:<base64>,1:<base64>"`; `encryption_key`, when also set, is KEK 1.
pub(super) fn decode_key_list(
    value: &str,
    kek_1: Option<[u8; 32]>,
) -> Result<Vec<(u32, [u8; 32])>, String> {
    let mut keys: Vec<(u32, [u8; 32])> = kek_1.map(|k| vec![(1, k)]).unwrap_or_default();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, key) = item
            .split_once(':')
            .ok_or("each entry is `<id>:<base64 key>`, e.g. `2:...`")?;
        let id: u32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("key id {id:?} is not a number from 1 up"))?;
        let key = decode_key(key).map_err(|m| format!("key {id}: {m}"))?;
        match keys.iter().find(|(k, _)| *k == id) {
            Some((_, existing)) if *existing == key => {}
            Some(_) => return Err(format!("key id {id} is given twice with different keys")),
            None => keys.push((id, key)),
        }
    }
    if keys.is_empty() {
        return Err("no key given".into());
    }
    keys.sort_by_key(|(id, _)| *id);
    Ok(keys)
}
