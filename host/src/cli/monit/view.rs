//! Draws a [`Dashboard`] into a ratatui frame: title, services table, log pane, status
//! line, help line. Pure (state in, widgets out); it never reads the terminal or the
//! network, so tests render it on ratatui's `TestBackend` and read the buffer.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

use super::dashboard::{Dashboard, ServiceRow, Tone};
use crate::supervisor::ServiceState;

pub const HELP: &str =
    "↑/↓ or j/k select · s start · x stop · r restart (each asks y to confirm) · ? help · q/Esc quit";

pub fn render(frame: &mut Frame, d: &Dashboard) {
    let area = frame.area();
    // Header row and borders take 3 lines; the table never takes more than half.
    let table_height = (d.rows.len() as u16 + 3).clamp(4, (area.height / 2).max(4));
    let help_height = u16::from(d.show_help);
    let [title, table, log, status, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_height),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(help_height),
    ])
    .areas(area);
    frame.render_widget(title_line(d), title);
    render_table(frame, table, d);
    render_log(frame, log, d);
    frame.render_widget(status_line(d), status);
    if d.show_help {
        frame.render_widget(Paragraph::new(HELP).style(Style::new().fg(Color::Cyan)), help);
    }
}

fn title_line(d: &Dashboard) -> Paragraph<'static> {
    let mut spans = vec![
        Span::styled("apollo monit", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("  {}  {} service(s)", d.endpoint, d.rows.len())),
    ];
    if let Some(at) = &d.refreshed_at {
        spans.push(Span::raw(format!("  refreshed {at}")));
    }
    if let Some(error) = &d.refresh_error {
        spans.push(Span::styled(format!("  refresh failed: {error}"), Style::new().fg(Color::Red)));
    }
    Paragraph::new(Line::from(spans))
}

fn state_style(state: ServiceState) -> Style {
    match state {
        ServiceState::Running => Style::new().fg(Color::Green),
        ServiceState::Starting | ServiceState::Stopping | ServiceState::Backoff => Style::new().fg(Color::Yellow),
        ServiceState::Unhealthy | ServiceState::Errored => Style::new().fg(Color::Red),
        ServiceState::Stopped => Style::new().fg(Color::DarkGray),
    }
}

fn render_table(frame: &mut Frame, area: Rect, d: &Dashboard) {
    let header = Row::new(["NAME", "STATE", "PID", "CPU", "MEM", "RESTARTS", "UPTIME", "PORTS", "MODE"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = d.rows.iter().map(|r| table_row(r));
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Fill(1),
        Constraint::Length(10),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::new().borders(Borders::ALL).title(" services "))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    let mut state = TableState::new().with_selected(d.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
}

fn table_row(r: &ServiceRow) -> Row<'static> {
    Row::new([
        Cell::from(r.name.clone()),
        Cell::from(r.state.as_str()).style(state_style(r.state)),
        Cell::from(r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into())),
        Cell::from(r.cpu_percent.map(|c| format!("{c:.1}%")).unwrap_or_else(|| "-".into())),
        Cell::from(r.rss_bytes.map(memory).unwrap_or_else(|| "-".into())),
        Cell::from(r.restarts.to_string()),
        Cell::from(r.uptime_secs.map(uptime).unwrap_or_else(|| "-".into())),
        Cell::from(if r.ports.is_empty() {
            "-".to_string()
        } else {
            r.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
        }),
        Cell::from(if r.mode.is_empty() { "-".to_string() } else { r.mode.clone() }),
    ])
}

fn render_log(frame: &mut Frame, area: Rect, d: &Dashboard) {
    let title = match (&d.log_of, &d.log_note) {
        (Some(name), None) => format!(" log: {name} (following) "),
        (Some(name), Some(note)) => format!(" log: {name} ({note}) "),
        (None, _) => " log ".to_string(),
    };
    let block = Block::new().borders(Borders::ALL).title(title);
    let visible = usize::from(block.inner(area).height);
    let skip = d.log.len().saturating_sub(visible);
    let lines: Vec<Line> = d.log.iter().skip(skip).map(|l| Line::raw(printable(l))).collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn status_line(d: &Dashboard) -> Paragraph<'static> {
    let style = match d.tone {
        Tone::Info => Style::new(),
        Tone::Good => Style::new().fg(Color::Green),
        Tone::Bad => Style::new().fg(Color::Red),
    };
    let mut spans = vec![Span::styled(d.status.clone(), style)];
    if !d.show_help {
        spans.push(Span::styled("   (? for keys)", Style::new().fg(Color::DarkGray)));
    }
    Paragraph::new(Line::from(spans))
}

/// A log line as cells: tabs become spaces and other control characters (escape
/// sequences included) are shown as `?`, so a service's output cannot drive the terminal.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

fn memory(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    match bytes {
        b if b < 1024 * 1024 => format!("{:.0} KiB", b as f64 / 1024.0),
        b if b < 1024 * 1024 * 1024 => format!("{:.1} MiB", b as f64 / MIB),
        b => format!("{:.2} GiB", b as f64 / (MIB * 1024.0)),
    }
}

fn uptime(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match () {
        _ if d > 0 => format!("{d}d{h:02}h"),
        _ if h > 0 => format!("{h}h{m:02}m"),
        _ if m > 0 => format!("{m}m{s:02}s"),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::monit::dashboard::Intent;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn row(name: &str, state: ServiceState) -> ServiceRow {
        let running = state == ServiceState::Running;
        ServiceRow {
            name: name.into(),
            state,
            mode: "supervised".into(),
            pid: running.then_some(4242),
            ports: if running { vec![18080, 18081] } else { Vec::new() },
            restarts: 3,
            cpu_percent: running.then_some(12.5),
            rss_bytes: running.then_some(5 * 1024 * 1024 + 512 * 1024),
            uptime_secs: running.then_some(3725),
        }
    }

    fn screen(d: &Dashboard, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(f, d)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..height)
            .map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string())
            .collect()
    }

    fn dashboard() -> Dashboard {
        let mut d = Dashboard::new("unix:/run/apollo.sock");
        d.set_rows(vec![row("api", ServiceState::Running), row("cache", ServiceState::Stopped)], "12:00:00".into());
        d
    }

    #[test]
    fn shows_every_service_with_its_figures() {
        let d = dashboard();
        let lines = screen(&d, 120, 20);
        assert!(
            lines[0].starts_with("apollo monit  unix:/run/apollo.sock  2 service(s)  refreshed 12:00:00"),
            "{lines:#?}"
        );
        let header = lines.iter().find(|l| l.contains("NAME")).expect("header");
        for column in ["STATE", "PID", "CPU", "MEM", "RESTARTS", "UPTIME", "PORTS", "MODE"] {
            assert!(header.contains(column), "{header}");
        }
        let api = lines.iter().find(|l| l.contains("api")).expect("api row");
        assert!(api.contains("> api"), "selected: {api}");
        for figure in ["running", "4242", "12.5%", "5.5 MiB", "1h02m", "18080,18081", "supervised"] {
            assert!(api.contains(figure), "{figure} in {api}");
        }
        let cache = lines.iter().find(|l| l.contains("cache") && !l.contains("log:")).expect("cache row");
        assert!(cache.contains("stopped") && !cache.contains('>'), "{cache}");
        assert!(lines.iter().any(|l| l.contains("log: api (following)")), "{lines:#?}");
        assert!(lines[19].contains("2 service(s)") && lines[19].contains("(? for keys)"), "{lines:#?}");
    }

    #[test]
    fn the_log_pane_shows_the_newest_lines_that_fit() {
        let mut d = dashboard();
        for i in 0..50 {
            d.push_log("api", format!("line {i}\x1b[31m\tred"));
        }
        let lines = screen(&d, 100, 20);
        assert!(lines.iter().any(|l| l.contains("line 49?[31m red")), "escapes neutralised: {lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("line 0?")), "{lines:#?}");
        d.log_ended("api", "log stream ended".into());
        assert!(screen(&d, 100, 20).iter().any(|l| l.contains("log: api (log stream ended)")));
    }

    #[test]
    fn selection_confirmation_and_help_are_visible() {
        let mut d = dashboard();
        assert_eq!(d.on_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE)), Intent::FollowLog("cache".into()));
        d.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE));
        let lines = screen(&d, 120, 20);
        assert!(lines.iter().any(|l| l.contains("> cache")), "{lines:#?}");
        assert!(lines[19].contains("stop cache? y to confirm"), "{lines:#?}");
        d.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE));
        d.on_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
        let lines = screen(&d, 120, 20);
        assert!(lines[19].contains("j/k select") && lines[19].contains("q/Esc quit"), "{lines:#?}");
        d.set_refresh_error("cannot reach the host".into());
        assert!(screen(&d, 120, 20)[0].contains("refresh failed: cannot reach the host"));
    }

    #[test]
    fn figures_are_human_sized() {
        assert_eq!(memory(512 * 1024), "512 KiB");
        assert_eq!(memory(3 * 1024 * 1024 * 1024), "3.00 GiB");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(61), "1m01s");
        assert_eq!(uptime(90_000), "1d01h");
    }

    #[test]
    fn a_tiny_terminal_does_not_panic() {
        let d = dashboard();
        screen(&d, 10, 3);
        screen(&d, 1, 1);
    }
}
