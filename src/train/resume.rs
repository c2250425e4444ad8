//! `--resume`: a training goes on from the checkpoint in its output folder,
//! provided it was started with the same settings.
use std::path::Path;

use super::output::ModelCard;
use super::trainer::{Start, Trainer};
use crate::absolute;
use crate::error::{Error, Result};

/// The most changed settings a refused `--resume` lists.
const SHOWN_CHANGES: usize = 12;

impl Trainer<'_> {
    /// Restores the weights, the optimizer, the intervals so far and where
    /// the steps stood.
    pub(super) fn resume(&mut self) -> Result<Start> {
        let ck = self.out.read_checkpoint()?;
        // The settings first: other ones could not even load the tensors
        // (another --arch), or would continue a different training.
        let changed = ck
            .settings
            .as_ref()
            .map(|before| self.card.settings_changed_since(before))
            .unwrap_or_default();
        if !changed.is_empty() {
            let mut lines: Vec<String> = changed.iter().take(SHOWN_CHANGES).cloned().collect();
            if changed.len() > SHOWN_CHANGES {
                lines.push(format!("and {} more", changed.len() - SHOWN_CHANGES));
            }
            return Err(Error::Invalid(format!(
                "--resume: the training in {} has other settings than this command \
                 (checkpoint → this run):\n  {}\nrerun it with the checkpoint's settings (the \
                 interrupted command plus --resume), or train these settings into a new --out \
                 (or start over in this one with --force instead of --resume)",
                self.cfg.out.display(),
                lines.join("\n  ")
            )));
        }
        self.out
            .restore_checkpoint(&ck, &mut self.net.vs, &mut self.opt)?;
        // The steps' seconds go on from the earlier runs' (they counted only
        // the resumed part of the training).
        self.card.train_seconds = ck.train_seconds();
        self.card.epochs = ck.epochs;
        self.card.best_epoch = ck.best_epoch;
        self.card.baselines = ck.baselines;
        self.spent_before = ck.spent_seconds;
        let step = self.schedule.resume(ck.epoch, ck.step, ck.run);
        Ok(Start {
            step,
            partial: ck.partial,
        })
    }
}

impl ModelCard {
    /// The settings of `self` that differ from `before`'s (a checkpoint's),
    /// each as `name: before → now`, nested ones by their path
    /// (`spec.input_size`). A whole differing section was once shown as its
    /// JSON: one changed `--lr` named `derivation` with its ~4 KB of
    /// decisions.
    pub fn settings_changed_since(
        &self,
        before: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<String> {
        changed_settings(&absolute_paths(before.clone()), self.settings())
    }
}

/// A checkpoint's settings with `data` and `val_data` made absolute.
/// Checkpoints written before the card's paths were made absolute hold them
/// as given; a resume runs from where the training did, so they are read
/// from here (else every such resume was refused, its `data` named as
/// changed).
fn absolute_paths(
    mut before: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    for key in ["data", "val_data"] {
        if let Some(serde_json::Value::String(p)) = before.get(key) {
            if Path::new(p).is_relative() {
                let now = absolute(Path::new(p)).to_string_lossy().into_owned();
                before.insert(key.to_string(), now.into());
            }
        }
    }
    before
}

/// [`ModelCard::settings_changed_since`] on the settings themselves.
fn changed_settings(
    before: &serde_json::Map<String, serde_json::Value>,
    now: serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut changed = Vec::new();
    differences(
        "",
        Some(&serde_json::Value::Object(before.clone())),
        Some(&serde_json::Value::Object(now)),
        &mut changed,
    );
    // `derivation` says why each setting was chosen: a changed flag changes
    // its decision line too, so it is named only when nothing else differs.
    let derived = |path: &str| path.starts_with("derivation");
    if changed.iter().any(|(path, _)| !derived(path)) {
        changed.retain(|(path, _)| !derived(path));
    }
    changed
        .into_iter()
        .map(|(path, change)| format!("{path}: {change}"))
        .collect()
}

/// The longest value [`differences`] shows (a decision's `why` is a
/// sentence or two).
const SHOWN_VALUE_CHARS: usize = 80;

/// Appends to `out` each leaf at which `before` and `now` differ, as
/// (`path`, `before → now`). Objects are compared key by key and lists of
/// the same length item by item (a list of decisions by their `setting`).
fn differences(
    path: &str,
    before: Option<&serde_json::Value>,
    now: Option<&serde_json::Value>,
    out: &mut Vec<(String, String)>,
) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, now) {
        (Some(Value::Object(b)), Some(Value::Object(n))) => {
            let mut keys: Vec<&String> = b.keys().chain(n.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                differences(&join(k), b.get(k), n.get(k), out);
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(n))) if b.len() == n.len() && b != n => {
            for (i, (x, y)) in b.iter().zip(n).enumerate() {
                let name = match (x.get("setting"), y.get("setting")) {
                    (Some(Value::String(s)), Some(Value::String(t))) if s == t => s.clone(),
                    _ => i.to_string(),
                };
                differences(&format!("{path}[{name}]"), Some(x), Some(y), out);
            }
        }
        (b, n) if b != n => out.push((path.to_string(), format!("{} → {}", shown(b), shown(n)))),
        _ => {}
    }
}

/// A setting's value in a message: a string as itself, anything else as
/// JSON, at most [`SHOWN_VALUE_CHARS`] characters.
fn shown(v: Option<&serde_json::Value>) -> String {
    let text = match v {
        None => return "(none)".into(),
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v) => v.to_string(),
    };
    match text.char_indices().nth(SHOWN_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused `--resume` names each changed setting by its path, not
    /// the whole section it is in (one changed --lr once dumped ~4 KB of
    /// `derivation`).
    #[test]
    fn changed_settings_are_named_one_by_one() {
        let card = |lr: f64, size: u32, why: &str| {
            let decisions: Vec<serde_json::Value> = (0..30)
                .map(|i| serde_json::json!({"setting": format!("s{i}"), "value": "x", "why": why}))
                .chain([serde_json::json!({"setting": "learning rate", "value": lr, "why": why})])
                .collect();
            match serde_json::json!({
                "lr": lr,
                "data": "/d",
                "spec": {"arch": "convnet", "input_size": size},
                "derivation": {"decisions": decisions},
            }) {
                serde_json::Value::Object(m) => m,
                _ => unreachable!(),
            }
        };
        let long = "a sentence of why ".repeat(10);
        let before = card(0.004, 28, &long);
        assert!(changed_settings(&before, before.clone()).is_empty());
        assert_eq!(
            changed_settings(&before, card(0.5, 32, &long)),
            ["lr: 0.004 → 0.5", "spec.input_size: 28 → 32"]
        );
        // Only the derivation differs: its lines are named, each cut short.
        let changed = changed_settings(&before, card(0.004, 28, "another reason"));
        assert_eq!(changed.len(), 31, "{changed:?}");
        assert!(
            changed[0].starts_with("derivation.decisions[s0].why: a sentence")
                && changed[0].contains("… → another reason")
                && changed[0].chars().count() < 200,
            "{changed:?}"
        );
        // A setting only one side has.
        let mut older = before.clone();
        older.remove("data");
        assert_eq!(changed_settings(&older, before), ["data: (none) → /d"]);
    }

    /// A checkpoint from before model.json's paths were absolute resumes
    /// from where it was trained.
    #[test]
    fn a_checkpoint_with_relative_paths_resumes_from_here() {
        let obj = |data: &str| match serde_json::json!({"data": data, "val_data": null}) {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let here = absolute(Path::new("Cargo.toml"));
        assert!(here.is_absolute());
        let (old, now) = (obj("Cargo.toml"), obj(&here.to_string_lossy()));
        assert_eq!(changed_settings(&old, now.clone()).len(), 1);
        assert!(changed_settings(&absolute_paths(old), now.clone()).is_empty());
        // Another file is still another file.
        assert_eq!(
            changed_settings(&absolute_paths(obj("README.md")), now).len(),
            1
        );
    }
}
