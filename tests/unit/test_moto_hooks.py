"""The local runner's hooks into moto: they fit the moto uv.lock pins, and a moto that moved them is named.

An upgrade of moto that moves or changes an internal the runner patches fails here, by hook name
(``test_the_pinned_moto_has_what_each_hook_relies_on[<hook>-<internal>]``), not somewhere deep in an
end-to-end run.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from report_exporter.local import moto_hooks
from report_exporter.local.moto_hooks import SEAMS, Seam


@pytest.mark.parametrize("seam", SEAMS, ids=[f"{s.hook}-{s.attribute}" for s in SEAMS])
def test_the_pinned_moto_has_what_each_hook_relies_on(seam: Seam) -> None:
    assert moto_hooks.problem(seam) is None


def test_the_hooks_install_and_are_removed_afterwards() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.dynamodb.models import DynamoDBBackend
    from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    def patched() -> list[Any]:
        return [LambdaSimpleBackend.invoke, WaitFunction._wait_interval, retrier_decl.RetrierDecl._eval_body,
                retrier_decl.time, jitter_strategy_decl.random, BaseExecutionWorkerCommunication.terminated,
                Environment.set_error, *(getattr(DynamoDBBackend, m) for m in moto_hooks._DYNAMODB_ITEM_CALLS)]

    before = patched()
    waited: list[float] = []
    with moto_hooks.installed(invoke=lambda *a: b"{}", wait=lambda env, s: waited.append(s),
                              retry_sleep=lambda env, s: None, terminated=lambda ended: None,
                              jitter=random.Random(0)):
        inside = patched()
        # A Wait state's interval goes to the runner's hook instead of moto's sleep
        WaitFunction._wait_interval(object(), object(), 7)
    assert waited == [7]
    assert [a is b for a, b in zip(before, inside, strict=True)] == [False] * len(before)
    assert [a is b for a, b in zip(before, patched(), strict=True)] == [True] * len(before)


def test_a_moved_internal_fails_naming_the_moto_version_and_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a moto whose WaitFunction._wait_interval takes other parameters, and whose Lambda backend lost invoke
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    monkeypatch.setattr(WaitFunction, "_wait_interval", lambda self, env, seconds, extra: None)
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", None)
    # When the runner installs its hooks
    with pytest.raises(RuntimeError) as raised, moto_hooks.installed(
            invoke=lambda *a: b"", wait=lambda env, s: None, retry_sleep=lambda env, s: None,
            terminated=lambda ended: None, jitter=None):
        pass
    # Then the error names moto's version, each hook and what changed
    message = str(raised.value)
    assert f"moto {moto_hooks.moto_version()} " in message
    assert "hook 'invoke': moto.awslambda_simple.models.LambdaSimpleBackend.invoke is gone" in message
    assert ("hook 'wait': moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function."
            "WaitFunction._wait_interval takes (self, env, seconds, extra), the hook expects (self, env, "
            "wait_seconds)") in message


def test_a_module_that_lost_a_member_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    monkeypatch.setattr(retrier_decl, "time", object())
    seam = next(s for s in SEAMS if s.attribute == "time")
    assert moto_hooks.problem(seam) == (
        "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time has no sleep")
