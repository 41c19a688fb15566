"""The seven Lambdas: runtime, architecture, timeouts, logs, code assets, roles.

Each function's environment and grants, function by function, are held by the tables in
``test_least_privilege.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from exporter_infra import names
from exporter_infra.bundling import FUNCTIONS_DIR, module_file, source_hash
from exporter_infra.constructs.exporter_functions import PARQUET_HANDLERS
from report_exporter import limits
from tests.infra.conftest import Synth
from tests.infra.support import as_list, joined, logical_id, logical_ids, resources, statements_of_role

# Bytecode magic of CPython 3.12 (fixed for every 3.12.x release), the Lambda runtime's Python.
MAGIC_312 = (3531).to_bytes(2, "little") + b"\r\n"
VENDOR_FACING = {names.REQUEST_REPORT, names.CHECK_REPORT, names.DOWNLOAD_REPORT}


def _functions(pipeline: Template) -> dict[str, dict[str, Any]]:
    """Functions by state name (from the handler string, not the logical id)."""
    by_handler = {handler: state for state, handler in names.HANDLERS.items()}
    return {
        by_handler[fn["Properties"]["Handler"]]: fn
        for fn in resources(pipeline, "AWS::Lambda::Function")
        if fn["Properties"]["Handler"] in by_handler
    }


def _statements_of_role(pipeline: Template, role: dict[str, Any]) -> list[dict[str, Any]]:
    return statements_of_role(pipeline, role["Fn::GetAtt"][0])


def test_one_function_per_task_state_and_end_run(pipeline: Template) -> None:
    assert set(_functions(pipeline)) == set(names.HANDLERS)
    assert names.HANDLERS[names.END_RUN] == "report_exporter.handlers.end_run.lambda_handler"


def test_timeouts_are_the_ones_limits_sizes_the_work_and_leases_by(pipeline: Template) -> None:
    assert set(limits.FUNCTION_TIMEOUT_SECONDS) == set(names.HANDLERS)
    timeouts = {state: fn["Properties"]["Timeout"] for state, fn in _functions(pipeline).items()}
    assert timeouts == limits.FUNCTION_TIMEOUT_SECONDS
    assert timeouts[names.PLAN_RUN] == 20 and timeouts[names.REQUEST_REPORT] == 120


def test_functions_are_arm64_python312_json_logged_and_traced(pipeline: Template) -> None:
    for fn in _functions(pipeline).values():
        props = fn["Properties"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "python3.12"
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["TracingConfig"] == {"Mode": "Active"}


def test_write_parquet_has_its_own_code_asset(pipeline: Template) -> None:
    keys = {state: fn["Properties"]["Code"]["S3Key"] for state, fn in _functions(pipeline).items()}
    parquet = keys.pop(names.WRITE_PARQUET)
    assert len(set(keys.values())) == 1
    assert parquet not in keys.values()


def test_asset_hash_depends_on_the_requirements_file() -> None:
    assert source_hash("requirements.txt") != source_hash("requirements-parquet.txt")


def test_each_function_has_its_own_role_without_managed_policies(pipeline: Template) -> None:
    roles = [fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in _functions(pipeline).values()]
    assert len(set(roles)) == len(roles)
    all_roles = pipeline.find_resources("AWS::IAM::Role")
    for role_id in roles:
        assert "ManagedPolicyArns" not in all_roles[role_id]["Properties"]


def test_functions_write_only_to_their_own_log_group(pipeline: Template) -> None:
    for state, fn in _functions(pipeline).items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]
        logs = [s for s in _statements_of_role(pipeline, fn["Properties"]["Role"])
                if any(str(a).startswith("logs:") for a in as_list(s["Action"]))]
        assert logs, state
        for statement in logs:
            assert set(as_list(statement["Action"])) == {"logs:CreateLogStream", "logs:PutLogEvents"}
            assert statement["Resource"] == {"Fn::GetAtt": [group["Ref"], "Arn"]}


def test_only_vendor_facing_functions_read_secrets_and_only_the_exports_secrets(synth: Synth) -> None:
    expected = sorted(f"arn:{{AWS::Partition}}:secretsmanager:{{AWS::Region}}:{{AWS::AccountId}}:secret:{name}-??????"
                      for name in {e.secret_name for e in synth.config.deployed_exports.exports})
    for state, fn in _functions(synth.pipeline).items():
        statements = [s for s in _statements_of_role(synth.pipeline, fn["Properties"]["Role"])
                      if any(str(a).startswith("secretsmanager:") for a in as_list(s["Action"]))]
        if state not in VENDOR_FACING:
            assert statements == [], state
            continue
        (statement,) = statements
        assert statement["Action"] == "secretsmanager:GetSecretValue"
        assert sorted(joined(r) for r in as_list(statement["Resource"])) == expected


def test_the_state_machine_may_invoke_its_tasks_but_not_end_run_or_watch_runs(synth: Synth) -> None:
    (machine,) = resources(synth.pipeline, "AWS::StepFunctions::StateMachine")
    invoked = {
        joined(resource)
        for statement in statements_of_role(synth.pipeline, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
        if "lambda:InvokeFunction" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }
    functions = synth.built.pipeline.functions
    tasks = {f"{{{logical_id(fn)}.Arn}}" for fn in functions.by_state.values()}
    assert invoked == tasks | {f"{arn}:*" for arn in tasks}
    for not_a_task in (functions.end_run, functions.watch_runs):
        assert not [arn for arn in invoked if logical_id(not_a_task) in arn]
    # Every function is a task but EndRun and WatchRuns, which EventBridge rules invoke.
    assert len(logical_ids(synth.pipeline, "AWS::Lambda::Function")) == len(tasks) + 2


def test_bundles_install_aarch64_wheels_for_the_lambda_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from exporter_infra.bundling import FUNCTIONS_DIR, PipLocalBundling

    command = PipLocalBundling(FUNCTIONS_DIR / "requirements-parquet.txt",
                               handlers=PARQUET_HANDLERS).install_command(str(tmp_path))
    text = " ".join(command)
    assert "aarch64" in text and "3.12" in text and ":all:" in text
    assert str(tmp_path) in command and str(FUNCTIONS_DIR / "requirements-parquet.txt") in command


def test_a_bundle_holds_its_handlers_modules_compiled_for_the_lambda_python(tmp_path: Path) -> None:
    from exporter_infra.bundling import PipLocalBundling, import_closure

    # Given a bundle of WriteParquet's modules (with no wheels: an empty requirements file)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# none\n")
    out = tmp_path / "bundle"
    PipLocalBundling(requirements, handlers=PARQUET_HANDLERS).try_bundle(str(out))
    # Then it holds exactly the modules the handler's imports reach: no vendor adapters, no local runner
    sources = {str(p.relative_to(out)) for p in out.rglob("*.py")}
    ours, _ = import_closure(PARQUET_HANDLERS)
    assert sources == {str(module_file(m).relative_to(FUNCTIONS_DIR)) for m in ours}  # type: ignore[union-attr]
    assert "report_exporter/handlers/write_parquet.py" in sources
    assert not [s for s in sources if s.startswith(("report_exporter/adapters", "report_exporter/local"))]
    # And every module has python3.12 bytecode that is used without checking the source's time
    for source in sources:
        path = out / source
        pyc = path.parent / "__pycache__" / f"{path.stem}.cpython-312.pyc"
        header = pyc.read_bytes()[:16]
        assert header[:4] == MAGIC_312, source
        assert int.from_bytes(header[4:8], "little") == 0b01, source  # hash-based, check_source off
