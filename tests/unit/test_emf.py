"""EMF lines: one per invocation, every metric in it, a valid document CloudWatch accepts."""

import json

import pytest

from chalicelib.platform import emf


def test_one_line_carries_every_metric_of_the_invocation() -> None:
    lines: list[str] = []
    with emf.invocation("customer_worker", write=lines.append, correlation_id="c-1"):
        emf.count("CustomerCreated")
        emf.count("CustomerCreated")
        emf.count("WorkerRecordFailed", by="bad_body")
        emf.count("WorkerRecordFailed", by="database")
        emf.timing("WhatsAppLatency", 120.5)
        emf.timing("WhatsAppLatency", 80)
    [line] = lines
    document = json.loads(line)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "RegistrationBackend"
    assert directive["Dimensions"] == [["Stage"]]
    units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert units == {
        "CustomerCreated": "Count",
        "WorkerRecordFailed": "Count",
        "WorkerRecordFailed.bad_body": "Count",
        "WorkerRecordFailed.database": "Count",
        "WhatsAppLatency": "Milliseconds",
    }
    assert (document["CustomerCreated"], document["WorkerRecordFailed"]) == (2, 2)
    assert (document["WorkerRecordFailed.bad_body"], document["WorkerRecordFailed.database"]) == (1, 1)
    assert document["WhatsAppLatency"] == [120.5, 80]
    assert (document["Stage"], document["function"], document["correlation_id"]) == ("local", "customer_worker", "c-1")
    assert isinstance(document["_aws"]["Timestamp"], int)
    assert emf.parse(f"noise\n{line}\n{{}}\n") == [document]


def test_nothing_recorded_writes_nothing_and_outside_an_invocation_nothing_is_kept() -> None:
    lines: list[str] = []
    emf.count("RegistrationCreated")  # no invocation: ignored, no error
    with emf.invocation("api_handler", write=lines.append):
        pass
    assert lines == []


def test_the_line_is_written_when_the_invocation_raises_and_nested_invocations_share_it() -> None:
    lines: list[str] = []
    inner: list[emf.Metrics | None] = []

    def fail() -> None:
        with emf.invocation("send_notifications", write=lines.append):
            with emf.invocation("inner", write=lines.append):
                emf.count("NotificationSent", by="customer_created")
                inner.append(emf.current())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    [document] = [json.loads(line) for line in lines]
    assert document["function"] == "send_notifications"
    assert document["NotificationSent.customer_created"] == 1
    assert emf.current() is None
    assert [m.function if m else None for m in inner] == ["send_notifications"]


def test_the_stage_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE", "prod")
    lines: list[str] = []
    with emf.invocation("api_handler", write=lines.append):
        emf.count("TransitionApplied", by="approve")
    assert json.loads(lines[0])["Stage"] == "prod"


def test_a_metric_keeps_its_unit_and_samples_are_capped() -> None:
    metrics = emf.Metrics("f", "local")
    for n in range(150):
        metrics.timing("WhatsAppLatency", n)
    with pytest.raises(ValueError, match="Milliseconds"):
        metrics.count("WhatsAppLatency")
    document = json.loads(metrics.line() or "")
    assert len(document["WhatsAppLatency"]) == emf.MAX_VALUES


def test_summary_is_one_readable_line() -> None:
    lines: list[str] = []
    with emf.invocation("api_handler", write=lines.append, correlation_id="abc"):
        emf.count("RegistrationCreated")
        emf.timing("WhatsAppLatency", 12.25)
    [document] = emf.parse(lines[0])
    assert emf.summary(document) == (
        "metrics api_handler [local] RegistrationCreated=1 WhatsAppLatency=12.25 correlation_id=abc"
    )


def test_locally_the_default_writer_prints_the_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMF_OUTPUT", "summary")
    with emf.invocation("customer_worker"):
        emf.count("CustomerCreated")
    assert capsys.readouterr().out == "metrics customer_worker [local] CustomerCreated=1\n"
    monkeypatch.delenv("EMF_OUTPUT")
    with emf.invocation("customer_worker"):
        emf.count("CustomerCreated")
    [document] = emf.parse(capsys.readouterr().out)
    assert document["CustomerCreated"] == 1
