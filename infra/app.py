"""CDK entry point: ``python app.py`` synthesizes both stacks into ``cdk.out`` (no Docker needed).

Context (``-c key=value`` with the CDK CLI, or environment variables with plain python):
  exports      path of the exports TOML file (default: infra/exports.toml)     [EXPORTS_FILE]
  stage        stage name (default prod); names every stack and resource, see   [STAGE]
               report_exporter/stages.py. Only prod is termination-protected.
  bundle       "false" skips installing Lambda dependencies (quick checks)      [BUNDLE]
  alarm_email  where failure alerts go (an email subscription to the topic)     [ALARM_EMAIL]
  alerts       "off" to deploy without any alert destination, on purpose        [ALERTS]
  link_margin_hours  alert a ready report not downloaded this long before its   [LINK_MARGIN_HOURS]
               vendor link expires (default 24)
Without alarm_email and without alerts=off the synth stops and says so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "functions")]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402

from exporter_infra.app_builder import build_app  # noqa: E402
from exporter_infra.config import DEFAULT_EXPORTS, StageConfig, StageConfigError  # noqa: E402


def main() -> None:
    probe = cdk.App()
    exports = probe.node.try_get_context("exports") or os.environ.get("EXPORTS_FILE") or str(DEFAULT_EXPORTS)
    stage = probe.node.try_get_context("stage") or os.environ.get("STAGE", "prod")
    bundle = str(probe.node.try_get_context("bundle") or os.environ.get("BUNDLE", "true")).lower() != "false"
    alarm_email = probe.node.try_get_context("alarm_email") or os.environ.get("ALARM_EMAIL", "")
    alerts = str(probe.node.try_get_context("alerts") or os.environ.get("ALERTS", "on")).lower()
    margin = str(probe.node.try_get_context("link_margin_hours") or os.environ.get("LINK_MARGIN_HOURS", "24"))
    try:
        if not margin.isdigit():
            raise StageConfigError(f"link_margin_hours must be a whole number of hours, not {margin!r}")
        config = StageConfig.from_file(Path(exports), stage=stage, bundle=bundle, alarm_email=alarm_email,
                                       alerts=alerts, link_margin_hours=int(margin))
    except StageConfigError as exc:
        sys.exit(f"report-exporter: cannot synthesize: {exc}")
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    built = build_app(config, outdir=os.environ.get("CDK_OUTDIR", str(HERE / "cdk.out")), env=env)
    built.app.synth()


if __name__ == "__main__":
    main()
