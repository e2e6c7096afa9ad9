"""The benchmark's pathway: a coordinator task that repeats until the episode is closed, so one
instance can take any number of completions (plain BPMN, a lane, a gateway)."""

from __future__ import annotations

KEY = "bench-outreach"

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="bench" targetNamespace="http://carepath/bench">
  <bpmn:process id="bench-outreach" name="Benchmark outreach" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane_cc" name="Care Coordinator">
      <bpmn:flowNodeRef>call</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="call" name="Call patient"/>
    <bpmn:exclusiveGateway id="done_gw" name="Episode closed?" default="again"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="done_gw"/>
    <bpmn:sequenceFlow id="closed" sourceRef="done_gw" targetRef="end">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">closed == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="again" sourceRef="done_gw" targetRef="call"/>
  </bpmn:process>
</bpmn:definitions>
"""
