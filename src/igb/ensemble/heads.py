"""``ensemble.vary=head`` on cached features: the backbone runs once, the heads on its output.

With ``vary=head`` every initialization shares the backbone of ``seed0`` (or the
pretrained one); only the head differs. The head's input is therefore the same for every
seed: it is recorded once, batch by batch exactly as the model's own forward gives it
(a forward hook on the head module, inside :func:`igb.metrics.measure.batch_stat_mode`),
and each seed's head, the parameters ``build_model(..., seed)`` gives it
(:func:`igb.nn.reinit.head_sampler`: the head's own draws after a jump of the generator
past the backbone's, or the head alone with ``model.head_init=torch_default``), is
applied to it. The logits are those of the whole model bit for bit (the head module computes them,
on the same tensors), so ``inits.csv`` is that of the path that re-runs the backbone.

It applies when the head is one ``nn.Linear`` whose output is the model's output (checked
on the backbone's own forward); otherwise the ensemble runs the backbone per seed as
before, and says why. The closed-form gamma of a Gaussian head on these features
(:func:`igb.metrics.head_gamma`) comes along.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from igb.ensemble.plan import EvaluationPlan
from igb.ensemble.progress import ProgressFn
from igb.ensemble.replica import plan_replica
from igb.ensemble.statistics import StatisticsStore
from igb.metrics import feature_moments, logit_statistics
from igb.metrics.measure import batch_stat_mode, batches
from igb.nn.external import owner_modules
from igb.nn.reinit import HeadSampler, head_sampler, seeded_states

log = logging.getLogger(__name__)

#: the method name an ensemble on cached features reports
METHOD = "cached_heads"
#: heads sampled at once (the generator's jump works on many seeds per call)
SAMPLE_BATCH = 32


@dataclass
class CachedHeads:
    """The backbone's output on the evaluation batches and the head that reads it."""

    features: list[Tensor]
    head: nn.Linear
    head_names: dict[str, str]  # model-level name -> name inside ``head``
    sample: HeadSampler  # seeds -> their heads' parameters

    @functools.cached_property
    def gamma_gaussian_head(self) -> float:
        """gamma of a zero-bias head with iid zero-mean weights on these features (computed
        once: every block of seeds that reuses the features reports it)."""
        mean_g, spread = feature_moments(torch.cat(self.features))
        return float(mean_g / spread) if spread > 0 else float("nan")

    @torch.no_grad()
    def run(self, seeds: list[int], store: StatisticsStore, progress: ProgressFn) -> None:
        """Row ``k`` of ``store``: the logits of seed ``seeds[k]``'s head on the features.

        On a CPU the small head products run on one intra-op thread (as the loop method's
        workers do): with several, OpenMP's barriers cost far more than the product on a
        busy machine (docs/ensemble.md)."""
        threads = torch.get_num_threads()
        if self.head.weight.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            for start in range(0, len(seeds), SAMPLE_BATCH):
                batch = self.sample(seeds[start : start + SAMPLE_BATCH])
                for k, state in enumerate(batch, start):
                    self._put(k, state, store)
                    progress(1)
        finally:
            torch.set_num_threads(threads)

    def _put(self, k: int, state: dict[str, Tensor], store: StatisticsStore) -> None:
        """Row ``k``: the logits of the head with parameters ``state``."""
        for name, local in self.head_names.items():
            self.head.get_parameter(local).copy_(state[name])
        with torch.inference_mode():  # nn.Linear.forward, without the head's pre-hooks
            # (model.neutralize's centring): the features were recorded after them
            w, b = self.head.weight, self.head.bias
            logits = torch.cat([F.linear(f, w, b) for f in self.features])
        store.put(k, logit_statistics(logits.unsqueeze(0)))


def cached_heads(plan: EvaluationPlan, x: Tensor, backbone_seed: int) -> CachedHeads | str:
    """The features of ``plan``'s backbone (initialization ``backbone_seed``) on ``x`` and
    its head, or why the heads cannot run on cached features."""
    model_cfg, norm_cfg, device = plan.model, plan.norm, torch.device(plan.device)
    shape = tuple(x.shape[1:])
    built, head = seeded_states(model_cfg, norm_cfg, shape, plan.num_classes, device)
    owners = owner_modules(head)
    if len(owners) != 1:
        return f"the head is spread over {len(owners)} modules ({', '.join(owners)})"
    (owner,) = owners
    model = plan_replica(plan, shape)
    module = model.get_submodule(owner)
    if type(module) is not nn.Linear:
        return f"the head {owner} is a {type(module).__name__}, not an nn.Linear"
    sample, state = head_sampler(model_cfg, built, head, device, model, backbone_seed)
    with torch.no_grad():
        for name, tensor in (*model.named_parameters(), *model.named_buffers()):
            tensor.copy_(state[name])
    seen: list[tuple[Tensor, Tensor]] = []
    hook = module.register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
    try:
        with torch.inference_mode(), batch_stat_mode(model, plan.norm_mode):
            outputs = [model(x[s]) for s in batches(x.shape[0], plan.batch_size)]
    finally:
        hook.remove()
    if len(seen) != len(outputs) or not all(
        torch.equal(o, h) for o, (_, h) in zip(outputs, seen, strict=False)
    ):
        return f"the output of the head {owner} is not the model's output"
    names = {name: name[len(owner) + 1 :] for name in head}
    return CachedHeads([f for f, _ in seen], module, names, sample)
