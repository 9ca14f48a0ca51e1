//! What `apollo monit` shows and how keys change it: the service rows (built from the
//! API's answers, with CPU percentages from two CPU-time readings), the selection, the
//! followed log, the status line and the pending confirmation. Pure data and pure
//! functions — no terminal, no network — so every rule here is unit-tested.

use std::collections::{HashMap, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::api::AppSummary;
use crate::supervisor::{ServiceState, ServiceStatus};

/// Log lines kept for the selected service (the pane shows the newest that fit).
pub const LOG_LINES_KEPT: usize = 500;

/// One row of the services table.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRow {
    pub name: String,
    pub state: ServiceState,
    /// `supervised`, `script`, `container` or `unmanaged` (empty: not known yet).
    pub mode: String,
    pub pid: Option<i32>,
    pub ports: Vec<u16>,
    pub restarts: u32,
    /// Summed over the instances; `None` when not running or not readable.
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
    /// Since the oldest instance started.
    pub uptime_secs: Option<i64>,
}

/// CPU time per pid at the previous refresh, to turn the next reading into a rate.
#[derive(Debug, Clone, Default)]
pub struct CpuSamples {
    taken_at_ms: i64,
    cpu_ms_by_pid: HashMap<i32, u64>,
}

/// Builds the rows from `GET /api/apps` and the statuses of the services that have
/// processes, at wall-clock `now_ms`. Returns the samples the next refresh compares with.
pub fn build_rows(
    apps: &[AppSummary],
    statuses: &HashMap<String, ServiceStatus>,
    previous: &CpuSamples,
    now_ms: i64,
) -> (Vec<ServiceRow>, CpuSamples) {
    let mut samples = CpuSamples { taken_at_ms: now_ms, cpu_ms_by_pid: HashMap::new() };
    let elapsed_ms = now_ms - previous.taken_at_ms;
    let mut rows: Vec<ServiceRow> = apps
        .iter()
        .map(|app| {
            let status = statuses.get(&app.name);
            let instances = status.map(|s| s.instances.as_slice()).unwrap_or_default();
            let mut rss: Option<u64> = None;
            let mut cpu: Option<f64> = None;
            let mut oldest_start_ms: Option<i64> = None;
            for instance in instances {
                if let Some(bytes) = instance.rss_bytes {
                    rss = Some(rss.unwrap_or(0) + bytes);
                }
                if let (Some(pid), Some(cpu_ms)) = (instance.pid, instance.cpu_time_ms) {
                    samples.cpu_ms_by_pid.insert(pid, cpu_ms);
                    // A pid not seen last time (new process) has no rate yet.
                    if let Some(before) = previous.cpu_ms_by_pid.get(&pid).filter(|_| elapsed_ms > 0) {
                        let used = cpu_ms.saturating_sub(*before) as f64;
                        cpu = Some(cpu.unwrap_or(0.0) + used * 100.0 / elapsed_ms as f64);
                    }
                }
                let started = instance
                    .started_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis());
                if let Some(started) = started {
                    oldest_start_ms = Some(oldest_start_ms.map_or(started, |o: i64| o.min(started)));
                }
            }
            let running = app.state.is_active();
            ServiceRow {
                name: app.name.clone(),
                state: app.state,
                mode: app.mode.clone(),
                pid: app.pid,
                ports: app.ports.clone(),
                restarts: app.restarts,
                cpu_percent: cpu.filter(|_| running),
                rss_bytes: rss.filter(|_| running),
                uptime_secs: oldest_start_ms.filter(|_| running).map(|s| ((now_ms - s) / 1000).max(0)),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    (rows, samples)
}

/// A process-control action the dashboard can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

impl Action {
    /// The API verb: `POST /api/apps/{name}/{verb}`.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

/// What a key asks the I/O loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Nothing beyond redrawing.
    Redraw,
    Quit,
    /// The selection moved: follow this service's log instead.
    FollowLog(String),
    /// The operator confirmed an action.
    Run(Action, String),
}

/// Whether the status line reports a success, a failure or just information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Good,
    Bad,
}

/// Everything on screen.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Where the host is (`unix:/…` or `http://…`), for the title.
    pub endpoint: String,
    pub rows: Vec<ServiceRow>,
    /// The selected service by name, so it stays selected when rows come and go.
    pub selected: Option<String>,
    /// The service whose log `log` holds.
    pub log_of: Option<String>,
    pub log: VecDeque<String>,
    /// Why the log stopped following, if it did.
    pub log_note: Option<String>,
    pub status: String,
    pub tone: Tone,
    /// An action waiting for `y`.
    pub confirm: Option<(Action, String)>,
    pub show_help: bool,
    /// The last refresh failed with this (the rows shown are from before it).
    pub refresh_error: Option<String>,
    /// Local time of the last successful refresh (`HH:MM:SS`).
    pub refreshed_at: Option<String>,
}

impl Dashboard {
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            rows: Vec::new(),
            selected: None,
            log_of: None,
            log: VecDeque::new(),
            log_note: None,
            status: "connecting…".into(),
            tone: Tone::Info,
            confirm: None,
            show_help: false,
            refresh_error: None,
            refreshed_at: None,
        }
    }

    pub fn selected_index(&self) -> Option<usize> {
        let name = self.selected.as_deref()?;
        self.rows.iter().position(|r| r.name == name)
    }

    /// New rows from a refresh. Keeps the selection on the same service; selects the
    /// first one when nothing (or a removed service) was selected. Returns the service
    /// whose log should now be followed, when that changed.
    pub fn set_rows(&mut self, rows: Vec<ServiceRow>, refreshed_at: String) -> Option<String> {
        self.rows = rows;
        self.refresh_error = None;
        self.refreshed_at = Some(refreshed_at);
        if self.status == "connecting…" {
            self.status = format!("{} service(s)", self.rows.len());
        }
        if self.selected_index().is_none() {
            self.selected = self.rows.first().map(|r| r.name.clone());
        }
        self.selection_changed()
    }

    pub fn set_refresh_error(&mut self, message: String) {
        self.refresh_error = Some(message);
    }

    /// The log to follow if it is not the one already followed.
    fn selection_changed(&mut self) -> Option<String> {
        if self.selected != self.log_of {
            self.log_of = self.selected.clone();
            self.log.clear();
            self.log_note = None;
            return self.selected.clone();
        }
        None
    }

    /// A line of `service`'s log (lines of a log no longer shown are dropped).
    pub fn push_log(&mut self, service: &str, line: String) {
        if self.log_of.as_deref() != Some(service) {
            return;
        }
        if self.log.len() == LOG_LINES_KEPT {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    pub fn log_ended(&mut self, service: &str, note: String) {
        if self.log_of.as_deref() == Some(service) {
            self.log_note = Some(note);
        }
    }

    pub fn report(&mut self, tone: Tone, message: impl Into<String>) {
        self.tone = tone;
        self.status = message.into();
    }

    fn move_selection(&mut self, down: bool) -> Intent {
        if self.rows.is_empty() {
            return Intent::Redraw;
        }
        let last = self.rows.len() - 1;
        let next = match (self.selected_index(), down) {
            (None, _) => 0,
            (Some(i), true) => (i + 1).min(last),
            (Some(i), false) => i.saturating_sub(1),
        };
        self.selected = Some(self.rows[next].name.clone());
        match self.selection_changed() {
            Some(name) => Intent::FollowLog(name),
            None => Intent::Redraw,
        }
    }

    /// Applies one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Intent {
        if key.kind == KeyEventKind::Release {
            return Intent::Redraw;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Intent::Quit;
        }
        if let Some((action, name)) = self.confirm.take() {
            return if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter) {
                self.report(Tone::Info, format!("{} {name}…", action.verb()));
                Intent::Run(action, name)
            } else {
                self.report(Tone::Info, format!("{} {name}: cancelled", action.verb()));
                Intent::Redraw
            };
        }
        let action = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Intent::Quit,
            KeyCode::Down | KeyCode::Char('j') => return self.move_selection(true),
            KeyCode::Up | KeyCode::Char('k') => return self.move_selection(false),
            KeyCode::Char('?') => {
                self.show_help = !self.show_help;
                return Intent::Redraw;
            }
            KeyCode::Char('s') => Action::Start,
            KeyCode::Char('x') => Action::Stop,
            KeyCode::Char('r') => Action::Restart,
            _ => return Intent::Redraw,
        };
        match self.selected.clone() {
            Some(name) => {
                self.report(Tone::Info, format!("{} {name}? y to confirm, any other key cancels", action.verb()));
                self.confirm = Some((action, name));
            }
            None => self.report(Tone::Bad, "no service selected"),
        }
        Intent::Redraw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::InstanceStatus;

    fn app(name: &str, state: ServiceState) -> AppSummary {
        AppSummary {
            name: name.into(),
            id: format!("app_{name}"),
            kind: "Service".into(),
            release_status: String::new(),
            description: String::new(),
            state,
            mode: "supervised".into(),
            pid: state.is_active().then_some(42),
            ports: vec![8080],
            restarts: 2,
            run_dep: Vec::new(),
        }
    }

    fn status(name: &str, pid: i32, cpu_time_ms: u64, started_at: &str) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state: ServiceState::Running,
            mode: "supervised".into(),
            pid: Some(pid),
            instances: vec![InstanceStatus {
                instance: 0,
                pid: Some(pid),
                started_at: Some(started_at.into()),
                rss_bytes: Some(4 << 20),
                cpu_time_ms: Some(cpu_time_ms),
                adopted: false,
            }],
            ports: vec![8080],
            restarts: 2,
            stop_operation: false,
            health_failures: 0,
            message: String::new(),
            container: None,
            tags: Vec::new(),
            meta: Default::default(),
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn cpu_percent_comes_from_two_readings() {
        let apps = vec![app("web", ServiceState::Running), app("db", ServiceState::Stopped)];
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().timestamp_millis();
        let statuses = HashMap::from([("web".to_string(), status("web", 42, 1_000, "2026-01-01T00:00:00Z"))]);
        let (rows, samples) = build_rows(&apps, &statuses, &CpuSamples::default(), t0 + 10_000);
        assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["db", "web"], "sorted by name");
        let web = &rows[1];
        assert_eq!(web.cpu_percent, None, "one reading is no rate");
        assert_eq!(web.rss_bytes, Some(4 << 20));
        assert_eq!(web.uptime_secs, Some(10));
        assert_eq!(rows[0].rss_bytes, None);

        // 250 ms of CPU over 1 s of wall time: 25 %.
        let statuses = HashMap::from([("web".to_string(), status("web", 42, 1_250, "2026-01-01T00:00:00Z"))]);
        let (rows, _) = build_rows(&apps, &statuses, &samples, t0 + 11_000);
        assert_eq!(rows[1].cpu_percent, Some(25.0));

        // A new pid (the service restarted) starts without a rate again.
        let statuses = HashMap::from([("web".to_string(), status("web", 43, 5, "2026-01-01T00:00:10Z"))]);
        let (rows, _) = build_rows(&apps, &statuses, &samples, t0 + 12_000);
        assert_eq!(rows[1].cpu_percent, None);
        assert_eq!(rows[1].uptime_secs, Some(2));
    }

    fn dashboard() -> Dashboard {
        let mut d = Dashboard::new("unix:/tmp/apollo.sock");
        let apps =
            vec![app("a", ServiceState::Running), app("b", ServiceState::Stopped), app("c", ServiceState::Running)];
        let (rows, _) = build_rows(&apps, &HashMap::new(), &CpuSamples::default(), 0);
        assert_eq!(d.set_rows(rows, "12:00:00".into()), Some("a".into()), "the first service's log is followed");
        d
    }

    #[test]
    fn selection_moves_and_follows_the_log() {
        let mut d = dashboard();
        d.push_log("a", "line of a".into());
        d.push_log("b", "not shown".into());
        assert_eq!(d.log, ["line of a"]);
        assert_eq!(d.on_key(key(KeyCode::Up)), Intent::Redraw, "already at the top");
        assert_eq!(d.on_key(key(KeyCode::Char('j'))), Intent::FollowLog("b".into()));
        assert!(d.log.is_empty(), "another service's log starts empty");
        assert_eq!(d.on_key(key(KeyCode::Down)), Intent::FollowLog("c".into()));
        assert_eq!(d.on_key(key(KeyCode::Down)), Intent::Redraw, "already at the bottom");
        assert_eq!(d.on_key(key(KeyCode::Char('k'))), Intent::FollowLog("b".into()));

        // The selected service survives a refresh that reorders or removes others.
        let (rows, _) = build_rows(&[app("b", ServiceState::Stopped)], &HashMap::new(), &CpuSamples::default(), 0);
        assert_eq!(d.set_rows(rows, "12:00:01".into()), None);
        assert_eq!(d.selected.as_deref(), Some("b"));
        // A removed selection falls back to the first row.
        let (rows, _) = build_rows(&[app("z", ServiceState::Stopped)], &HashMap::new(), &CpuSamples::default(), 0);
        assert_eq!(d.set_rows(rows, "12:00:02".into()), Some("z".into()));
    }

    #[test]
    fn actions_need_a_confirmation() {
        let mut d = dashboard();
        assert_eq!(d.on_key(key(KeyCode::Char('x'))), Intent::Redraw);
        assert!(d.status.contains("stop a?"), "{}", d.status);
        assert_eq!(d.on_key(key(KeyCode::Char('y'))), Intent::Run(Action::Stop, "a".into()));
        assert!(d.confirm.is_none());

        assert_eq!(d.on_key(key(KeyCode::Char('r'))), Intent::Redraw);
        assert_eq!(d.on_key(key(KeyCode::Char('n'))), Intent::Redraw);
        assert!(d.status.contains("cancelled"), "{}", d.status);
        // Esc cancels a pending confirmation instead of quitting.
        d.on_key(key(KeyCode::Char('s')));
        assert_eq!(d.on_key(key(KeyCode::Esc)), Intent::Redraw);
        assert_eq!(d.on_key(key(KeyCode::Esc)), Intent::Quit);
        assert_eq!(d.on_key(key(KeyCode::Char('q'))), Intent::Quit);
        assert_eq!(d.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Intent::Quit);
    }

    #[test]
    fn the_log_keeps_a_bounded_tail() {
        let mut d = dashboard();
        for i in 0..LOG_LINES_KEPT + 10 {
            d.push_log("a", format!("line {i}"));
        }
        assert_eq!(d.log.len(), LOG_LINES_KEPT);
        assert_eq!(d.log.front().map(String::as_str), Some("line 10"));
    }
}
