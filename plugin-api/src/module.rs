//! The [`Module`] trait: what a module author implements.

use serde::de::DeserializeOwned;

use crate::error::ModuleError;
use crate::host::Host;
use crate::routes::Routes;

/// A module. Its handlers run on the module's own tokio runtime (a cdylib has its own
/// copy of tokio), so `tokio::spawn` and timers work in them and in `init`.
pub trait Module: Sized + Send + Sync + 'static {
    /// The module's name: its routes live under `/api/module/{NAME}/`, its config
    /// under `modules.config.{NAME}`.
    const NAME: &'static str;
    const VERSION: &'static str;
    const DESCRIPTION: &'static str;

    /// The module's section of the host config (`modules.config.{NAME}`), deserialised;
    /// absent or `null` gives `Default`, and keys it does not know are logged as
    /// warnings (a typo is seen, not silently ignored). [`NoConfig`] when there is none.
    type Config: DeserializeOwned + Default + Send;

    /// The routes and their handlers, bound in one place.
    fn routes() -> Routes<Self>;

    /// Builds the module; an error refuses the load with its message.
    fn init(host: Host, config: Self::Config) -> Result<Self, ModuleError>;

    /// `Ok(detail)` when healthy.
    fn health(&self) -> Result<String, String> {
        Ok("ok".into())
    }

    /// Called once before the host forgets this instance (reload, disable, shutdown).
    fn shutdown(&self) {}
}

/// The config of a module that takes none: any key given is warned about.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct NoConfig {}
