//! `likeness train`: the arguments as the trainer's settings, then the run
//! and its one-paragraph outcome.
use std::process::ExitCode;

use likeness_app::args::TrainArgs;

use crate::error::Result;
use crate::runtime::{self, DeviceSpec, DeviceSpecExt};

pub fn run(device: DeviceSpec, plan: &runtime::ThreadPlan, args: TrainArgs) -> Result<ExitCode> {
    let device = device.resolve()?;
    eprintln!(
        "likeness train: {}; threads: {plan}",
        runtime::describe_device(device)
    );
    crate::train::install_ctrlc();
    let cfg = settings(args);
    match crate::train::train(&cfg, device)? {
        crate::train::Outcome::Finished(card) => {
            let best = card.best().map(|e| e.summary()).unwrap_or_default();
            let stopped = card
                .run
                .as_ref()
                .map(|r| format!("; {} at step {}", r.stopped, r.steps))
                .unwrap_or_default();
            let mut msg = format!(
                "trained in {:.1}s ({:.1}s of steps{stopped}); best {}",
                card.total_seconds, card.train_seconds, best,
            );
            if let Some(v) = card.best().and_then(|e| e.validation.as_ref()) {
                msg.push_str(&format!(
                    "\nheld-out ({}): Recall@1 {:.4}, MAP@R {:.4}",
                    likeness_app::plural::plural(v.queries, "image"),
                    v.recall_1,
                    v.map_at_r
                ));
                if let Some(b) = &card.baselines {
                    msg.push('\n');
                    msg.push_str(&b.verdict(v));
                }
            }
            msg.push_str(&format!("\nmodel: {}", cfg.out.display()));
            likeness_app::stdout::line(&msg)?;
            Ok(ExitCode::SUCCESS)
        }
        crate::train::Outcome::Interrupted {
            epoch,
            step,
            budget,
        } => {
            let at = if budget {
                format!("step {step}")
            } else {
                format!("epoch {} step {step}", epoch + 1)
            };
            eprintln!("likeness: stopped at {at}; continue with the same command and --resume");
            Ok(ExitCode::from(130))
        }
    }
}

/// The trainer's settings from the arguments.
fn settings(args: TrainArgs) -> crate::train::TrainConfig {
    crate::train::TrainConfig {
        data: args.data,
        out: args.out,
        arch: args.arch,
        dim: args.dim,
        width: args.width,
        flip_tta: match (args.flip_tta, args.no_flip_tta) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        input_size: args.input_size,
        classes_per_tuple: args.classes_per_tuple,
        tuples: args.tuples,
        loss: crate::train::loss::LossConfig {
            kind: args.loss,
            l2_reg: args.l2_reg,
            margin: args.margin,
        },
        mine_classes: args.mine_classes,
        epochs: args.epochs,
        steps_per_epoch: args.steps_per_epoch,
        lr: args.lr,
        lr_schedule: args.lr_schedule,
        precision: args.precision,
        weight_decay: args.weight_decay,
        val: args.val,
        val_data: args.val_data,
        flip: match (args.flip, args.no_flip) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        augment: crate::transform::Augment {
            flip: !args.no_flip,
            min_crop: args.min_crop,
        },
        min_per_class: args.min_per_class,
        seed: args.seed,
        resume: args.resume,
        force: args.force,
        eval_batch: args.eval_batch,
        val_every: args.val_every,
        max_steps: args.max_steps,
        min_steps: args.min_steps,
        warmup_steps: args.warmup_steps,
        patience: args.patience,
        time_budget: args.time_budget,
        val_steps: args.val_steps,
        score_bins: args.score_bins,
        score_weight: args.score_weight,
    }
}
