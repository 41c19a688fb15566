"""The stateful/stateless split, the buckets, and one secret per export."""

from __future__ import annotations

from collections import Counter

from aws_cdk.assertions import Template

from report_exporter.models.exports import VendorName
from report_exporter.vendors import FACTS
from tests.infra.conftest import Synth
from tests.infra.support import resources

STATEFUL = {"AWS::S3::Bucket", "AWS::DynamoDB::GlobalTable", "AWS::Glue::Database", "AWS::Glue::Table",
            "AWS::SecretsManager::Secret", "AWS::Athena::WorkGroup", "AWS::Athena::NamedQuery"}
STATELESS = {"AWS::Lambda::Function", "AWS::StepFunctions::StateMachine", "AWS::Scheduler::Schedule",
             "AWS::CloudWatch::Alarm", "AWS::SNS::Topic", "AWS::SQS::Queue", "AWS::Events::Rule",
             "AWS::Lambda::EventInvokeConfig"}


def _types(template: Template) -> set[str]:
    return set(Counter(r["Type"] for r in template.to_json()["Resources"].values()))


def test_stateful_resources_live_in_the_storage_stack(storage: Template, pipeline: Template) -> None:
    assert _types(storage) >= STATEFUL
    assert not _types(pipeline) & STATEFUL


def test_stateless_resources_live_in_the_pipeline_stack(storage: Template, pipeline: Template) -> None:
    assert _types(pipeline) >= STATELESS
    assert not _types(storage) & STATELESS


def test_stateful_data_is_retained(storage: Template) -> None:
    for kind in ("AWS::S3::Bucket", "AWS::DynamoDB::GlobalTable", "AWS::SecretsManager::Secret",
                 "AWS::Glue::Database"):
        for resource in resources(storage, kind):
            assert resource["DeletionPolicy"] == "Retain", kind


def test_buckets_are_encrypted_private_and_refuse_plain_http(storage: Template) -> None:
    buckets = storage.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 4  # access logs, raw, curated, query results
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in resources(storage, "AWS::S3::BucketPolicy")}
    for logical, bucket in buckets.items():
        props = bucket["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }
        statements = policies[logical]["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in statements), logical
        assert props.get("LifecycleConfiguration", {}).get("Rules"), logical


def test_one_secret_per_export_unless_it_opts_out(synth: Synth) -> None:
    secrets = {
        s["Properties"]["Name"]: s["Properties"] for s in resources(synth.storage, "AWS::SecretsManager::Secret")
    }
    wanted = {e.secret_name: e for e in synth.config.deployed_exports.exports if e.create_secret}
    assert set(secrets) == set(wanted)
    assert "shared/particle-sandbox" not in secrets
    for name, props in secrets.items():
        export = wanted[name]
        assert export.name in props["Description"]
        for field in FACTS[export.vendor_name].secret_fields:
            assert f'"{field}"' in props["Description"]
        # Created empty: the value is set out of band, never through the template.
        assert props["SecretString"] == "{}"
        assert "GenerateSecretString" not in props


def test_every_vendor_documents_its_secret_fields() -> None:
    assert set(FACTS) == set(VendorName)
    assert all(facts.secret_fields for facts in FACTS.values())
