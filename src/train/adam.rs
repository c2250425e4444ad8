//! Adam whose state can be saved: the moments go into the checkpoint, so
//! that `--resume` continues exactly where Ctrl-C stopped.
//!
//! tch's `nn::Adam` is libtorch's C++ `torch::optim::Adam`, whose state tch
//! does not expose. This is the same update, op for op (libtorch 2.11's
//! `torch/csrc/api/src/optim/adam.cpp`, non-amsgrad):
//!
//! ```text
//! step += 1
//! grad = grad + weight_decay * p                    (if weight_decay != 0)
//! m = m * beta1 + (1 - beta1) * grad                (mul_, add_ with alpha)
//! v = v * beta2 + (1 - beta2) * grad * grad         (mul_, addcmul_ with value)
//! denom = sqrt(v) / sqrt(1 - beta2^step) + eps
//! p = p - lr / (1 - beta1^step) * m / denom         (addcdiv_ with value)
//! ```
//!
//! and it gives bit-identical weights (tested against `nn::Adam`). The fused
//! `alpha`/`value` arguments round once where a separate multiply would round
//! twice, and tch's generated API drops them, so those three calls go to
//! libtorch's operator entry points directly (see [`ffi`]).

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// libtorch's dispatcher entry points for the in-place `add_`, `addcmul_` and
/// `addcdiv_` with their scalar argument (`at::_ops::*::call`, exported by
/// libtorch_cpu, mangled names of libtorch 2.x). They take C++ references,
/// which are pointers in the x86-64 and aarch64 C ABIs: `at::Tensor&` is the
/// `at::Tensor*` that a tch tensor holds, `const c10::Scalar&` the
/// `c10::Scalar*` that torch-sys's `ats_float` allocates; the returned
/// reference (the first argument) is ignored.
mod ffi {
    use torch_sys::{C_scalar, C_tensor};
    extern "C" {
        #[link_name = "_ZN2at4_ops11add__Tensor4callERNS_6TensorERKS2_RKN3c106ScalarE"]
        pub fn add_(
            this: *mut C_tensor,
            other: *const C_tensor,
            alpha: *const C_scalar,
        ) -> *mut C_tensor;
        #[link_name = "_ZN2at4_ops8addcmul_4callERNS_6TensorERKS2_S5_RKN3c106ScalarE"]
        pub fn addcmul_(
            this: *mut C_tensor,
            t1: *const C_tensor,
            t2: *const C_tensor,
            value: *const C_scalar,
        ) -> *mut C_tensor;
        #[link_name = "_ZN2at4_ops8addcdiv_4callERNS_6TensorERKS2_S5_RKN3c106ScalarE"]
        pub fn addcdiv_(
            this: *mut C_tensor,
            t1: *const C_tensor,
            t2: *const C_tensor,
            value: *const C_scalar,
        ) -> *mut C_tensor;
    }
}

/// A libtorch scalar (double), freed on drop.
struct Scalar(*mut torch_sys::C_scalar);

impl Scalar {
    fn new(v: f64) -> Scalar {
        // SAFETY: allocates a `c10::Scalar` holding `v`; freed in `drop`.
        Scalar(unsafe { torch_sys::ats_float(v) })
    }
}

impl Drop for Scalar {
    fn drop(&mut self) {
        // SAFETY: allocated by `ats_float`, freed once.
        unsafe { torch_sys::ats_free(self.0) }
    }
}

/// The three fused updates. Callers pass float tensors of one shape on one
/// device, for which libtorch does not throw (a C++ exception here would
/// abort the process): [`Adam::backward_step`] checks that before calling.
fn add_(this: &mut Tensor, other: &Tensor, alpha: f64) {
    let a = Scalar::new(alpha);
    // SAFETY: valid tensors and scalar, alive for the call (see `ffi`).
    unsafe { ffi::add_(this.as_mut_ptr(), other.as_ptr(), a.0) };
}

fn addcmul_(this: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) {
    let v = Scalar::new(value);
    // SAFETY: as in `add_`.
    unsafe { ffi::addcmul_(this.as_mut_ptr(), t1.as_ptr(), t2.as_ptr(), v.0) };
}

fn addcdiv_(this: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) {
    let v = Scalar::new(value);
    // SAFETY: as in `add_`.
    unsafe { ffi::addcdiv_(this.as_mut_ptr(), t1.as_ptr(), t2.as_ptr(), v.0) };
}

/// Adam over the trainable variables of a `VarStore`.
pub struct Adam {
    /// (name, parameter, first moment, second moment), sorted by name.
    params: Vec<(String, Tensor, Tensor, Tensor)>,
    /// Each parameter's learning rate as a fraction of `lr` (1 unless
    /// [`Adam::set_scale`] changed it); 0 leaves the parameter as it is.
    scales: Vec<f64>,
    /// Steps taken (libtorch keeps one per parameter; they are all equal
    /// here, since every parameter gets a gradient every step).
    step: i64,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl Adam {
    /// `nn::Adam`'s defaults: betas (0.9, 0.999), eps 1e-8. The parameters
    /// are the variables of `vs` that require gradients.
    pub fn new(vs: &tch::nn::VarStore, lr: f64, weight_decay: f64) -> Adam {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars
            .into_iter()
            .map(|(n, p)| {
                let (m, v) = (p.zeros_like(), p.zeros_like());
                (n, p, m, v)
            })
            .collect::<Vec<_>>();
        Adam {
            scales: vec![1.0; params.len()],
            params,
            step: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    /// Sets the learning rate of the parameters whose name `which` accepts
    /// to `scale` times `lr` (the backbone under a new head).
    pub fn set_scale(&mut self, which: impl Fn(&str) -> bool, scale: f64) {
        for ((name, ..), s) in self.params.iter().zip(&mut self.scales) {
            if which(name) {
                *s = scale;
            }
        }
    }

    /// Back-propagates `loss` and updates the parameters. The gradients are
    /// taken from the autograd engine directly (as `torch.autograd.grad`),
    /// not accumulated into the parameters' `.grad`: the values are those
    /// that a cleared `.grad` would receive.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let params: Vec<&Tensor> = self.params.iter().map(|(_, p, _, _)| p).collect();
        let grads = Tensor::f_run_backward(&[loss], &params, false, false)?;
        self.step += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let bias1 = 1.0 - b1.powf(self.step as f64);
        let bias2 = 1.0 - b2.powf(self.step as f64);
        let step_size = self.lr / bias1;
        tch::no_grad(|| {
            for (((name, p, m, v), grad), &scale) in
                self.params.iter_mut().zip(grads).zip(&self.scales)
            {
                if !grad.defined() || scale == 0.0 {
                    continue;
                }
                if grad.size() != p.size()
                    || grad.kind() != Kind::Float
                    || p.kind() != Kind::Float
                    || grad.device() != p.device()
                {
                    return Err(Error::Invalid(format!(
                        "Adam: {name}: parameter {:?} {:?} and gradient {:?} {:?} do not match",
                        p.kind(),
                        p.size(),
                        grad.kind(),
                        grad.size()
                    )));
                }
                let grad = if self.weight_decay != 0.0 {
                    let mut g = grad.copy();
                    add_(&mut g, p, self.weight_decay);
                    g
                } else {
                    grad
                };
                let _ = m.g_mul_scalar_(b1);
                add_(m, &grad, 1.0 - b1);
                let _ = v.g_mul_scalar_(b2);
                addcmul_(v, &grad, &grad, 1.0 - b2);
                let mut denom = v.sqrt().g_div_scalar(bias2.sqrt());
                let _ = denom.g_add_scalar_(self.eps);
                addcdiv_(p, m, &denom, -step_size * scale);
            }
            Ok(())
        })
    }

    /// The moments as named tensors (`exp_avg/NAME`, `exp_avg_sq/NAME`) for
    /// a safetensors file, and the step count.
    pub fn state(&self) -> (Vec<(String, Tensor)>, i64) {
        let mut named = Vec::with_capacity(2 * self.params.len());
        for (n, _, m, v) in &self.params {
            named.push((format!("exp_avg/{n}"), m.contiguous()));
            named.push((format!("exp_avg_sq/{n}"), v.contiguous()));
        }
        (named, self.step)
    }

    /// Restores [`Adam::state`]: every moment must be there, with its
    /// parameter's shape.
    pub fn load_state(&mut self, named: &[(String, Tensor)], step: i64) -> Result<()> {
        let find = |key: String| {
            named
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, t)| t)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the checkpoint's optimizer state lacks {key}; start over with --force"
                    ))
                })
        };
        tch::no_grad(|| {
            for (n, p, m, v) in &mut self.params {
                for (key, dst) in [(format!("exp_avg/{n}"), m), (format!("exp_avg_sq/{n}"), v)] {
                    let src = find(key.clone())?;
                    if src.size() != p.size() {
                        return Err(Error::Invalid(format!(
                            "the checkpoint's {key} has shape {:?}, the network {:?}; start over with --force",
                            src.size(),
                            p.size()
                        )));
                    }
                    dst.copy_(&src.to_kind(Kind::Float).to_device(dst.device()));
                }
            }
            Ok(())
        })?;
        self.step = step;
        Ok(())
    }
}
