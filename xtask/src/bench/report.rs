//! The bench's figures as rows of one table: shown at a glance at the end of
//! a run (a Markdown pipe table, aligned, so the same text reads in a
//! terminal and pastes into docs/performance.md), and written as JSON for
//! machines (`--json`).

use std::path::Path;

use serde_json::{Value, json};

use crate::Result;

/// Where a row sits in the table; rows are shown grouped in this order,
/// whatever order they were measured in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Section {
    Spin,
    Checkout,
    Memory,
    Further,
}

impl Section {
    fn title(self) -> &'static str {
        match self {
            Section::Spin => "shop-host beside real Spin (same .wasm and manifest) and native hello",
            Section::Checkout => "checkout on shop-host (events on, embedded broker)",
            Section::Memory => "resident memory (the runtime's process group)",
            Section::Further => "further parts",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Section::Spin => "spin",
            Section::Checkout => "checkout",
            Section::Memory => "memory",
            Section::Further => "further",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    PerSec,
    Ms,
    MiB,
    Count,
    /// A quotient (tracing on ÷ off, this tree ÷ baseline).
    Times,
}

impl Unit {
    fn key(self) -> &'static str {
        match self {
            Unit::PerSec => "per_sec",
            Unit::Ms => "ms",
            Unit::MiB => "MiB",
            Unit::Count => "count",
            Unit::Times => "times",
        }
    }

    pub fn show(self, v: f64) -> String {
        match self {
            Unit::PerSec if v >= 100.0 => format!("{v:.0}/s"),
            Unit::PerSec => format!("{v:.1}/s"),
            Unit::Ms if v < 10.0 => format!("{v:.2} ms"),
            Unit::Ms => format!("{v:.1} ms"),
            Unit::MiB => format!("{v:.1} MiB"),
            Unit::Count if v.fract() == 0.0 => format!("{v:.0}"),
            Unit::Count => format!("{v:.1}"),
            Unit::Times => format!("{v:.3}×"),
        }
    }
}

/// Spin's cell: a figure, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Spin {
    Value(f64),
    /// "no spin" (none found), "spin failed" (it did not start), "-" (not
    /// measured on Spin for this row).
    Absent(&'static str),
}

pub const NO_SPIN: Spin = Spin::Absent("no spin");
pub const SPIN_FAILED: Spin = Spin::Absent("spin failed");
pub const NOT_ON_SPIN: Spin = Spin::Absent("-");

impl Spin {
    pub fn value(&self) -> Option<f64> {
        match self {
            Spin::Value(v) => Some(*v),
            Spin::Absent(_) => None,
        }
    }
}

/// What a goal bounds: the shop-host figure, or the ratio column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum On {
    ShopHost,
    Ratio,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Goal {
    pub on: On,
    pub at_least: bool,
    pub bound: f64,
}

impl Goal {
    pub fn at_least(on: On, bound: f64) -> Goal {
        Goal { on, at_least: true, bound }
    }

    pub fn at_most(on: On, bound: f64) -> Goal {
        Goal { on, at_least: false, bound }
    }

    fn show(&self, row: &Row) -> String {
        let bound = match self.on {
            On::Ratio => format!("{}×", trim(self.bound)),
            On::ShopHost => match row.unit {
                Unit::PerSec => format!("{}/s", trim(self.bound)),
                Unit::Ms => format!("{} ms", trim(self.bound)),
                Unit::MiB => format!("{} MiB", trim(self.bound)),
                _ => trim(self.bound),
            },
        };
        match (self.at_least, self.on, row.unit) {
            // "at most 0 failures" reads better as "= 0".
            (false, On::ShopHost, Unit::Count) if self.bound == 0.0 => "= 0".to_string(),
            (true, ..) => format!("≥ {bound}"),
            (false, ..) => format!("≤ {bound}"),
        }
    }

    /// None when the figure it bounds is missing (no Spin, say).
    fn met(&self, row: &Row) -> Option<bool> {
        let v = match self.on {
            On::ShopHost => row.shop_host?,
            On::Ratio => row.ratio?.0,
        };
        Some(if self.at_least { v >= self.bound } else { v <= self.bound })
    }
}

/// 3 -> "3", 0.4 -> "0.4", 0.9 -> "0.9".
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One measurement.
#[derive(Clone, Debug)]
pub struct Row {
    pub section: Section,
    pub what: String,
    pub clients: Option<usize>,
    pub unit: Unit,
    pub shop_host: Option<f64>,
    pub spin: Spin,
    pub native: Option<f64>,
    /// The ratio column: a quotient and what it is of ("Spin", "peak", "native").
    pub ratio: Option<(f64, &'static str)>,
    pub goals: Vec<Goal>,
    /// Figures behind the row (p50, p99, failures…), in the JSON as numbers
    /// and in the table's last column as text.
    pub details: Vec<(&'static str, f64)>,
}

impl Row {
    pub fn new(section: Section, what: impl Into<String>, clients: Option<usize>, unit: Unit) -> Row {
        Row { section, what: what.into(), clients, unit, shop_host: None, spin: NOT_ON_SPIN, native: None, ratio: None, goals: Vec::new(), details: Vec::new() }
    }

    /// shop-host ÷ Spin in the ratio column, when both were measured.
    pub fn ratio_to_spin(mut self) -> Row {
        self.ratio = match (self.shop_host, self.spin.value()) {
            (Some(a), Some(b)) if b > 0.0 => Some((a / b, "Spin")),
            _ => None,
        };
        self
    }

    /// "yes" when every goal is met, "NO" when one is not, "?" when a goal
    /// cannot be judged (its figure is missing), "" without goals.
    pub fn met(&self) -> &'static str {
        if self.goals.is_empty() {
            return "";
        }
        let verdicts: Vec<Option<bool>> = self.goals.iter().map(|g| g.met(self)).collect();
        if verdicts.contains(&Some(false)) {
            "NO"
        } else if verdicts.contains(&None) {
            "?"
        } else {
            "yes"
        }
    }

    fn cells(&self) -> Vec<String> {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| self.unit.show(v));
        let spin = match &self.spin {
            Spin::Value(v) => self.unit.show(*v),
            Spin::Absent(why) => why.to_string(),
        };
        let ratio = self.ratio.map_or_else(String::new, |(r, of)| format!("{r:.2}× {of}"));
        let goal = self.goals.iter().map(|g| g.show(self)).collect::<Vec<_>>().join(", ");
        let details = self
            .details
            .iter()
            .map(|(k, v)| {
                // The key's unit suffix becomes the figure's unit.
                let name = |suffix: &str| k.trim_end_matches(suffix).replace('_', " ");
                if k.ends_with("_ms") {
                    format!("{} {}", name("_ms"), Unit::Ms.show(*v))
                } else if k.ends_with("_MiB") {
                    format!("{} {}", name("_MiB"), Unit::MiB.show(*v))
                } else if k.ends_with("_per_sec") {
                    format!("{} {}", name("_per_sec"), Unit::PerSec.show(*v))
                } else {
                    format!("{} {}", name(""), Unit::Count.show(*v))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        vec![
            self.what.clone(),
            self.clients.map_or_else(String::new, |c| c.to_string()),
            opt(self.shop_host),
            spin,
            opt(self.native),
            ratio,
            goal,
            self.met().to_string(),
            details,
        ]
    }

    fn json(&self) -> Value {
        let details: serde_json::Map<String, Value> = self.details.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        json!({
            "section": self.section.key(),
            "what": self.what,
            "clients": self.clients,
            "unit": self.unit.key(),
            "shop_host": self.shop_host,
            "spin": self.spin.value(),
            "spin_absent": match &self.spin { Spin::Absent(why) => Some(*why), Spin::Value(_) => None },
            "native": self.native,
            "ratio": self.ratio.map(|r| r.0),
            "ratio_of": self.ratio.map(|r| r.1),
            "goals": self.goals.iter().map(|g| g.show(self)).collect::<Vec<_>>(),
            "met": match self.met() { "yes" => json!(true), "NO" => json!(false), _ => Value::Null },
            "details": details,
        })
    }
}

/// Where and when a run happened: the figures mean little without it.
pub struct Context {
    pub date: String,
    pub commit: String,
    pub cores: usize,
    pub cpu: String,
    pub memory_mib: u64,
    pub seconds: u32,
    pub spin: Option<String>,
}

impl Context {
    pub fn of_this_machine(root: &Path, seconds: u32) -> Context {
        let output = |cmd: &mut std::process::Command| {
            cmd.output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let date = output(std::process::Command::new("date").arg("-u")).unwrap_or_default();
        let mut commit = output(std::process::Command::new("git").arg("-C").arg(root).args(["rev-parse", "--short", "HEAD"])).unwrap_or_else(|| "unknown".into());
        // Others may be editing the tree while it is measured: say so.
        if output(std::process::Command::new("git").arg("-C").arg(root).args(["status", "--porcelain", "--untracked-files=no"])).is_some_and(|s| !s.is_empty()) {
            commit.push_str(" (with uncommitted changes)");
        }
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| "unknown".into());
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| t.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let spin = crate::spin_bin().map(|bin| {
            output(std::process::Command::new(&bin).arg("--version").stdin(std::process::Stdio::null())).unwrap_or_else(|| bin.display().to_string())
        });
        Context { date, commit, cores: std::thread::available_parallelism().map_or(0, |n| n.get()), cpu, memory_mib, seconds, spin }
    }

    fn lines(&self) -> String {
        format!(
            "{}; commit {}; {} cores ({}), {} MiB memory; {} s per run, wrk -t1 on 127.0.0.1; Spin: {}",
            self.date,
            self.commit,
            self.cores,
            self.cpu,
            self.memory_mib,
            self.seconds,
            self.spin.as_deref().unwrap_or("none found")
        )
    }
}

pub struct Report {
    pub context: Context,
    pub rows: Vec<Row>,
}

const HEADER: [&str; 9] = ["what", "clients", "shop-host", "Spin", "native", "ratio", "goal", "met?", "details"];

impl Report {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// The rows grouped by section (stable: measured order within one).
    fn sorted(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| r.section);
        rows
    }

    /// The table: a Markdown pipe table with padded columns, a bold row
    /// opening each section.
    pub fn table(&self) -> String {
        let mut lines: Vec<Vec<String>> = Vec::new();
        let mut section = None;
        for row in self.sorted() {
            if section != Some(row.section) {
                section = Some(row.section);
                let mut title = vec![String::new(); HEADER.len()];
                title[0] = format!("**{}**", row.section.title());
                lines.push(title);
            }
            lines.push(row.cells());
        }
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = HEADER.iter().map(|h| width(h)).collect();
        for line in &lines {
            // A section's title spans the row; it does not widen column one.
            if line[1..].iter().all(String::is_empty) && line[0].starts_with("**") {
                continue;
            }
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(width(cell));
            }
        }
        let render = |cells: &[String]| {
            let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(width(c))))).collect();
            format!("| {} |", padded.join(" | "))
        };
        let mut out = String::new();
        out.push_str(&render(&HEADER.map(String::from)));
        out.push('\n');
        out.push_str(&format!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|")));
        out.push('\n');
        for line in &lines {
            out.push_str(&render(line));
            out.push('\n');
        }
        out
    }

    /// The table with the run's context above it, as docs/performance.md holds it.
    pub fn markdown(&self) -> String {
        format!("{}\n\n{}", self.context.lines(), self.table())
    }

    pub fn json(&self) -> Value {
        let c = &self.context;
        json!({
            "date": c.date,
            "commit": c.commit,
            "machine": { "cores": c.cores, "cpu": c.cpu, "memory_mib": c.memory_mib },
            "seconds_per_run": c.seconds,
            "spin": c.spin,
            "rows": self.sorted().iter().map(|r| r.json()).collect::<Vec<_>>(),
        })
    }

    /// Replaces what docs/performance.md holds under "## Latest results"
    /// (up to the next "## " heading) with this run's table.
    pub fn write_into_docs(&self, doc: &Path) -> Result {
        let text = std::fs::read_to_string(doc).map_err(|e| format!("cannot read {}: {e}", doc.display()))?;
        let updated = replace_section(&text, "## Latest results", &self.markdown())
            .ok_or_else(|| format!("{} has no \"## Latest results\" heading", doc.display()))?;
        std::fs::write(doc, updated).map_err(|e| format!("cannot write {}: {e}", doc.display()))
    }
}

/// `text` with the body of the section `heading` (up to the next heading of
/// the same level, or the end) replaced by `body`.
fn replace_section(text: &str, heading: &str, body: &str) -> Option<String> {
    let start = text.find(&format!("\n{heading}\n")).map(|i| i + 1).or_else(|| text.starts_with(&format!("{heading}\n")).then_some(0))?;
    let body_start = start + heading.len() + 1;
    let end = text[body_start..].find("\n## ").map_or(text.len(), |i| body_start + i + 1);
    Some(format!("{}\n{}\n\n{}", &text[..body_start], body.trim_end(), &text[end..]).trim_end().to_string() + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        let mut r = Row::new(Section::Spin, "hello", Some(8), Unit::PerSec);
        r.shop_host = Some(3000.0);
        r.spin = Spin::Value(1000.0);
        r.goals.push(Goal::at_least(On::Ratio, 3.0));
        r.ratio_to_spin()
    }

    #[test]
    fn goals_are_judged() {
        assert_eq!(row().met(), "yes");
        let mut r = row();
        r.spin = Spin::Value(1500.0);
        assert_eq!(r.ratio_to_spin().met(), "NO");
        let mut r = row();
        r.spin = NO_SPIN;
        assert_eq!(r.ratio_to_spin().met(), "?");
        let mut r = Row::new(Section::Checkout, "failures", None, Unit::Count);
        r.shop_host = Some(0.0);
        r.goals.push(Goal::at_most(On::ShopHost, 0.0));
        assert_eq!((r.met(), r.goals[0].show(&r).as_str()), ("yes", "= 0"));
    }

    #[test]
    fn the_table_is_aligned_markdown() {
        let report = Report {
            context: Context { date: "d".into(), commit: "c".into(), cores: 2, cpu: "x".into(), memory_mib: 1, seconds: 1, spin: None },
            rows: vec![row()],
        };
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[3].starts_with("| hello | 8"), "{table}");
        assert!(lines[3].contains("3000/s") && lines[3].contains("1000/s") && lines[3].contains("3.00× Spin") && lines[3].contains("≥ 3×") && lines[3].contains("yes"), "{table}");
        assert_eq!(report.json()["rows"][0]["ratio"], json!(3.0));
    }

    #[test]
    fn the_docs_section_is_replaced() {
        let doc = "# P\n\n## Latest results\n\nold\n\n## Profile of one checkout\n\n(x)\n";
        assert_eq!(replace_section(doc, "## Latest results", "new").unwrap(), "# P\n\n## Latest results\n\nnew\n\n## Profile of one checkout\n\n(x)\n");
        assert_eq!(replace_section("## Latest results\nold\n", "## Latest results", "new").unwrap(), "## Latest results\n\nnew\n");
        assert!(replace_section("nothing", "## Latest results", "new").is_none());
    }
}
