//! Key-encryption key rotation while the broker serves: every link's data
//! key is re-wrapped under the newest KEK (the tokens themselves are not
//! touched), and the signing keys are re-sealed. Each write is conditional on
//! the row being unchanged, so a refresh racing the rotation wins cleanly (it
//! writes under the newest KEK anyway).

use super::links::{Vault, VaultError, data_key_aad};
use crate::upstream::UpstreamTokens;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// The KEK everything is now wrapped under.
    pub kek: u32,
    /// Links whose data key was re-wrapped.
    pub rewrapped: u64,
    /// Links sealed before envelope encryption, now given their own data key.
    pub enveloped: u64,
    /// Links a concurrent refresh rewrote first (already under the new KEK).
    pub raced: u64,
    /// Links that did not open with any configured KEK: left as they are.
    pub unreadable: Vec<String>,
    pub signing_keys_resealed: u64,
    /// Links per KEK after the run (`None`: sealed before envelopes).
    pub links_per_kek: Vec<(Option<i64>, i64)>,
}

const BATCH: i64 = 500;

impl RotationReport {
    /// What `mcp-broker keys rotate` prints.
    pub fn render(&self) -> String {
        let per_kek: Vec<String> = self
            .links_per_kek
            .iter()
            .map(|(kek, n)| match kek {
                Some(k) => format!("key {k}: {n}"),
                None => format!("no envelope: {n}"),
            })
            .collect();
        format!(
            "key-encryption key {}: {} link(s) re-wrapped, {} given a data key, {} rewritten by a \
             concurrent refresh, {} unreadable; {} signing key(s) re-sealed\nlinks per key now: {}",
            self.kek,
            self.rewrapped,
            self.enveloped,
            self.raced,
            self.unreadable.len(),
            self.signing_keys_resealed,
            if per_kek.is_empty() {
                "none".to_string()
            } else {
                per_kek.join(", ")
            }
        )
    }
}

impl Vault {
    pub async fn rewrap_all(&self) -> Result<RotationReport, VaultError> {
        let newest = self.cipher.newest_kek();
        let mut report = RotationReport {
            kek: newest,
            ..RotationReport::default()
        };
        let mut after = String::new();
        loop {
            let batch = self
                .store
                .links_not_under_kek(i64::from(newest), &after, BATCH)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.id.clone();
            for link in &batch {
                let aad = data_key_aad(&link.id, &link.grant_id, &link.provider);
                let Some(wrapped) = &link.data_key_enc else {
                    self.envelope_legacy(link, &mut report).await?;
                    continue;
                };
                let Ok(bytes) = self.cipher.open(wrapped, aad.as_bytes()) else {
                    report.unreadable.push(link.id.clone());
                    continue;
                };
                let rewrapped = self.cipher.seal(&bytes, aad.as_bytes());
                if self
                    .store
                    .rewrap_link(&link.id, wrapped, &rewrapped, i64::from(newest))
                    .await?
                {
                    report.rewrapped += 1;
                } else {
                    report.raced += 1;
                }
            }
        }
        report.signing_keys_resealed = self.reseal_signing_keys().await?;
        report.links_per_kek = self.store.links_per_kek().await?;
        Ok(report)
    }

    /// A link sealed directly by KEK 1 gets its own data key.
    async fn envelope_legacy(
        &self,
        link: &crate::store::UpstreamLinkRow,
        report: &mut RotationReport,
    ) -> Result<(), VaultError> {
        let access = self.open(link, &link.access_token_enc, "access");
        let refresh = link
            .refresh_token_enc
            .as_deref()
            .map(|r| self.open(link, r, "refresh"))
            .transpose();
        let (Ok(access_token), Ok(refresh_token)) = (access, refresh) else {
            report.unreadable.push(link.id.clone());
            return Ok(());
        };
        let Some(provider) = self.providers.get(&link.provider) else {
            report.unreadable.push(link.id.clone());
            return Ok(());
        };
        let tokens = UpstreamTokens {
            access_token,
            refresh_token,
            expires_in: None,
            refresh_token_expires_in: None,
            scopes: Vec::new(),
        };
        let mut sealed = self.seal_link(&link.id, &link.grant_id, provider, &tokens, 0);
        sealed.scopes = link.scopes.clone();
        if self.store.reseal_link(link.version, &sealed).await? {
            report.enveloped += 1;
        } else {
            report.raced += 1;
        }
        Ok(())
    }

    async fn reseal_signing_keys(&self) -> Result<u64, VaultError> {
        let mut count = 0;
        for key in self.store.active_signing_keys().await? {
            let aad = crate::tokens::signing::private_key_aad(&key.kid);
            if super::Cipher::sealed_kek(&key.private_key_enc) == Ok(self.cipher.newest_kek()) {
                continue;
            }
            let Ok(der) = self.cipher.open(&key.private_key_enc, aad.as_bytes()) else {
                continue;
            };
            let resealed = self.cipher.seal(&der, aad.as_bytes());
            if self
                .store
                .reseal_signing_key(&key.kid, &key.private_key_enc, &resealed)
                .await?
            {
                count += 1;
            }
        }
        Ok(count)
    }
}
