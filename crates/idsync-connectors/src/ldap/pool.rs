//! A bounded pool of bound ldap3 connections. Each operation leases one connection for its
//! duration, so N concurrent operations use N connections, exactly as a hand-written ldap3
//! program with N connections would.
//!
//! Connections that failed at the transport level are dropped, never returned. Every wait
//! (a free slot, connect, bind) is bounded by the operation timeout, so a dead server never
//! hangs a caller.

use super::config::LdapConfig;
use super::error::classify;
use crate::contract::{ConnectorError, ConnectorResult};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, SemaphorePermit};

#[derive(Debug)]
pub struct LdapPool {
    config: Arc<LdapConfig>,
    idle: Mutex<Vec<Ldap>>,
    slots: Semaphore,
}

/// A leased connection; returned to the pool on drop unless [`PooledConn::discard`]ed.
#[derive(Debug)]
pub struct PooledConn<'a> {
    ldap: Option<Ldap>,
    pool: &'a LdapPool,
    _slot: SemaphorePermit<'a>,
}

impl LdapPool {
    pub fn new(config: Arc<LdapConfig>) -> Self {
        let slots = Semaphore::new(config.pool_size);
        Self {
            config,
            idle: Mutex::new(Vec::new()),
            slots,
        }
    }

    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// Leases a connection, opening and binding one when none is idle.
    pub async fn get(&self) -> ConnectorResult<PooledConn<'_>> {
        let slot = tokio::time::timeout(self.config.operation_timeout, self.slots.acquire())
            .await
            .map_err(|_| {
                ConnectorError::Unavailable(format!(
                    "no free LDAP connection within {:?}",
                    self.config.operation_timeout
                ))
            })?
            .map_err(|_| ConnectorError::Internal("LDAP pool closed".into()))?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some(mut ldap) = idle.pop() {
                if !ldap.is_closed() {
                    found = Some(ldap);
                    break;
                }
            }
            found
        };
        let ldap = match reused {
            Some(ldap) => ldap,
            None => connect(&self.config).await?,
        };
        Ok(PooledConn {
            ldap: Some(ldap),
            pool: self,
            _slot: slot,
        })
    }

    /// Runs `op` on a leased connection under the operation timeout; a transport failure or a
    /// timeout throws the connection away.
    pub async fn run<T, F, Fut>(&self, op: F) -> ConnectorResult<T>
    where
        F: FnOnce(Ldap) -> Fut,
        Fut: Future<Output = ConnectorResult<T>>,
    {
        let mut conn = self.get().await?;
        let ldap = conn.clone();
        let result = bounded(self.config.operation_timeout, op(ldap)).await;
        if let Err(e) = &result
            && super::error::breaks_connection(e)
        {
            conn.discard();
        }
        result
    }
}

/// Awaits `fut` for at most `limit`; running out of time is `Unavailable`.
pub async fn bounded<T>(
    limit: std::time::Duration,
    fut: impl Future<Output = ConnectorResult<T>>,
) -> ConnectorResult<T> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(ConnectorError::Unavailable(format!(
            "LDAP operation did not finish within {limit:?}"
        )))
    })
}

/// Opens and binds one connection outside the pool (paging cursors own theirs).
pub async fn connect(config: &LdapConfig) -> ConnectorResult<Ldap> {
    let url = config.url();
    let settings = LdapConnSettings::new()
        .set_conn_timeout(config.operation_timeout)
        .set_starttls(config.start_tls && !config.ssl)
        .set_no_tls_verify(config.trust_all_certificates);
    let opened = tokio::time::timeout(
        config.operation_timeout,
        LdapConnAsync::with_settings(settings, &url),
    )
    .await
    .map_err(|_| ConnectorError::Unavailable(format!("connecting to {url} timed out")))?;
    let (conn, mut ldap) = opened.map_err(|e| match classify(e, &url) {
        ConnectorError::Config(m) => ConnectorError::Config(m),
        other => ConnectorError::Unavailable(format!("cannot connect to {url}: {other}")),
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection ended");
        }
    });
    if let Some(dn) = &config.principal {
        let pw = config.credentials.as_deref().unwrap_or("");
        ldap.with_timeout(config.operation_timeout);
        let res = ldap
            .simple_bind(dn, pw)
            .await
            .map_err(|e| classify(e, dn))?;
        res.success().map_err(|e| classify(e, dn))?;
    }
    Ok(ldap)
}

impl PooledConn<'_> {
    /// Closes the connection instead of returning it to the pool.
    pub fn discard(&mut self) {
        self.ldap = None;
    }
}

impl Deref for PooledConn<'_> {
    type Target = Ldap;
    fn deref(&self) -> &Ldap {
        self.ldap
            .as_ref()
            .expect("a leased connection is present until drop or discard")
    }
}

impl DerefMut for PooledConn<'_> {
    fn deref_mut(&mut self) -> &mut Ldap {
        self.ldap
            .as_mut()
            .expect("a leased connection is present until drop or discard")
    }
}

impl Drop for PooledConn<'_> {
    fn drop(&mut self) {
        if let Some(mut ldap) = self.ldap.take()
            && !ldap.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(ldap);
        }
    }
}
