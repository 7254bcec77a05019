//! Checking a [`StackConfig`] before a stack starts: [`StackConfig::validate`]
//! and the checked constructors [`Stack::try_new`] / [`Stack::try_with_addrs`].

use crate::device::{Device, DeviceAddrs};
use crate::{Stack, StackConfig};
use std::net::IpAddr;
use utcp_proto::{Config, ConfigError};

impl StackConfig {
    /// Checks the configuration: every field of `endpoint` (see
    /// `EndpointConfig::validate`), `mss_limit`, `batch` and `inbox`, and
    /// that no field the runtime sets itself was changed (`endpoint.conn.mss`
    /// comes from `mss_limit`, `endpoint.conn.mtu` and
    /// `endpoint.conn.tx_offload` from the device, `endpoint.secret` from
    /// `seed`).
    ///
    /// ```
    /// use utcp_runtime::{StackConfig, proto::ConfigError};
    /// assert_eq!(StackConfig::default().validate(), Ok(()));
    /// let bad = StackConfig { mss_limit: Some(0), ..StackConfig::default() };
    /// assert_eq!(bad.validate(), Err(ConfigError::Zero("mss_limit")));
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::Zero`] for `mss_limit: Some(0)`, a zero `batch`,
    /// `inbox` or `rcv_memory_pressure`; [`ConfigError::Inconsistent`] for a
    /// `batch` above 64 or `rcv_memory_pressure` above `rcv_memory_limit`;
    /// [`ConfigError::Overwritten`] for a changed `endpoint.conn.mss`,
    /// `endpoint.conn.mtu`, `endpoint.conn.tx_offload` or `endpoint.secret`;
    /// then those of `EndpointConfig::validate`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mss_limit == Some(0) {
            return Err(ConfigError::Zero("mss_limit"));
        }
        if self.batch == 0 {
            return Err(ConfigError::Zero("batch"));
        }
        if self.batch > 64 {
            return Err(ConfigError::Inconsistent(
                "batch is above 64, the most packets a device task takes at once",
            ));
        }
        if self.inbox == 0 {
            return Err(ConfigError::Zero("inbox"));
        }
        if self.rcv_memory_pressure == 0 {
            return Err(ConfigError::Zero("rcv_memory_pressure"));
        }
        if self.rcv_memory_pressure > self.rcv_memory_limit {
            return Err(ConfigError::Inconsistent(
                "rcv_memory_pressure is above rcv_memory_limit",
            ));
        }
        let defaults = Config::default();
        if self.endpoint.conn.mss != defaults.mss {
            return Err(ConfigError::Overwritten {
                field: "endpoint.conn.mss",
                instead: "mss_limit",
            });
        }
        if self.endpoint.conn.mtu != defaults.mtu {
            return Err(ConfigError::Overwritten {
                field: "endpoint.conn.mtu",
                instead: "the device's MTU",
            });
        }
        if self.endpoint.conn.tx_offload != defaults.tx_offload {
            return Err(ConfigError::Overwritten {
                field: "endpoint.conn.tx_offload",
                instead: "the device's offloads (its `offload` setting)",
            });
        }
        if self.endpoint.secret != [0; 16] {
            return Err(ConfigError::Overwritten {
                field: "endpoint.secret",
                instead: "seed",
            });
        }
        self.endpoint.validate()
    }
}

impl Stack {
    /// [`Stack::new`], after [`StackConfig::validate`]: an invalid
    /// configuration is an error instead of a stack that misbehaves.
    ///
    /// # Errors
    /// Those of [`StackConfig::validate`].
    pub fn try_new<D: Device + DeviceAddrs>(
        device: D,
        cfg: StackConfig,
    ) -> Result<Stack, ConfigError> {
        cfg.validate()?;
        Ok(Stack::new(device, cfg))
    }

    /// [`Stack::with_addrs`], after [`StackConfig::validate`].
    ///
    /// # Errors
    /// Those of [`StackConfig::validate`].
    pub fn try_with_addrs<D: Device>(
        device: D,
        addrs: Vec<IpAddr>,
        cfg: StackConfig,
    ) -> Result<Stack, ConfigError> {
        cfg.validate()?;
        Ok(Stack::with_addrs(device, addrs, cfg))
    }
}
