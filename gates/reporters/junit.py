"""``gate-report.junit.xml``: one JUnit test case per gate, for CI systems that show JUnit.

Each gate is a ``<testcase classname="ragate.<metric>" name="<rule>">``; a failing gate
carries a ``<failure>`` with the rule's description, a gated metric that reported nothing
a ``<failure>`` saying so. The run's environment, profile and chain version are suite
properties.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gates.reporters import NOT_RUN, register_reporter
from gates.results import GateReport

REPORT_JUNIT = "gate-report.junit.xml"


def junit_xml(report: GateReport) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"ragate-{report.env}",
        tests=str(len(report.gates) + len(report.missing)),
        failures=str(len(report.failing) + len(report.missing)),
        errors="0",
        skipped="0",
        timestamp=report.created,
    )
    props = ET.SubElement(suite, "properties")
    for key, value in [
        ("env", report.env),
        ("profile", report.profile or ""),
        ("verdict", "PASS" if report.passed else "FAIL"),
        *((f"chain.{k}", v) for k, v in sorted(report.chain_version.items())),
    ]:
        ET.SubElement(props, "property", name=key, value=str(value))
    for gate in report.gates:
        case = ET.SubElement(suite, "testcase", classname=f"ragate.{gate.metric}", name=gate.rule, time="0")
        if not gate.passed:
            failure = ET.SubElement(case, "failure", message=gate.describe(), type="GateFailed")
            failure.text = gate.describe()
    for metric in report.missing:
        case = ET.SubElement(suite, "testcase", classname=f"ragate.{metric}", name="not_run", time="0")
        ET.SubElement(
            case,
            "failure",
            message=f"{metric}: {NOT_RUN}",
            type="NotRun",
        )
    if not report.gates and not report.missing:
        case = ET.SubElement(suite, "testcase", classname="ragate", name="verdict", time="0")
        why = f"the run stopped before a verdict: {report.stopped}" if report.stopped else "no gate ran"
        ET.SubElement(case, "failure", message=f"{why}: the run fails closed", type="NothingDecided")
        suite.set("tests", "1")
        suite.set("failures", "1")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


@register_reporter("junit")
class JunitReporter:
    name = "junit"
    filename = REPORT_JUNIT

    def render(self, report: GateReport) -> str:
        return junit_xml(report)
