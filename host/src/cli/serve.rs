//! `apollo serve`: load the config, install logging, start the host, print where it
//! listens (one line on stdout, which scripts and tests read), run until SIGTERM/SIGINT.

use crate::auth::PasswordSource;
use crate::config::Config;
use crate::server::{RunningHost, termination_signal};

use super::{CliError, GlobalArgs};

pub async fn serve(g: &GlobalArgs, env_password: Option<String>) -> Result<(), CliError> {
    let loaded = Config::discover(g.config.as_deref())?;
    let _log_guard = crate::logging::init(&loaded.config.log)
        .map_err(|e| CliError::usage(format!("log.log_file {}: {e}", loaded.config.log.log_file.display())))?;
    for warning in &loaded.warnings {
        tracing::warn!("config: {warning}");
    }
    tracing::info!(config = %loaded.config.source_name(), "starting");
    let host = RunningHost::start(loaded.config, env_password).await.map_err(|e| CliError::failed(e.to_string()))?;
    match host.bootstrap.password_source {
        PasswordSource::Generated => {
            // Shown once, on the terminal only: it is not in the log and not stored in clear.
            let password = host.bootstrap.generated_password.as_deref().unwrap_or_default();
            eprintln!(
                "\n  First start: generated the admin password (shown only this once).\n    user:     {}\n    password: {password}\n  Change it with APOLLO_ADMIN_PASSWORD or auth.admin_password_hash (`apollo passwd`).\n",
                host.state.auth.admin_user()
            );
        }
        source => tracing::info!(?source, "admin password in force"),
    }
    println!("apollo listening on http://{} and unix:{}", host.http_addr, host.uds_path.display());
    let cancel = host.shutdown_token();
    // Either a signal stops the host, or the host stops by itself (and cancels the
    // token), which ends the signal wait: no task outlives the host.
    let on_signal = async {
        tokio::select! {
            () = termination_signal() => cancel.cancel(),
            () = cancel.cancelled() => {}
        }
    };
    let (result, ()) = tokio::join!(host.wait(), on_signal);
    result.map_err(|e| CliError::failed(e.to_string()))
}
