"""The demo's AWS side, created in moto with boto3, and the deploy.toml that describes it.

What Terraform would own in a real account: two ECS clusters with one service each, a task
definition, an ALB whose listener forwards to the two colors' target groups with weights, and
the SSM parameters that say blue is active on version 1. boto3 reaches moto through the
standard ``AWS_ENDPOINT_URL`` variable, as the worker's activities do. moto keeps regions apart:
``create_demo_resources`` once per region makes a multi-region environment, and
``write_demo_config`` describes them all in one environment.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from pydantic import BaseModel

from models.colors import COLORS, Color
from models.config import DeployConfig, load_config

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_ssm import SSMClient

INITIAL_VERSION = "1"
CONTAINER_PORT = 80
DEREGISTRATION_DELAY = 1
"""Seconds between a task's deregistration and its stop: the local load balancer follows
moto within a fraction of that."""


class DemoResources(BaseModel):
    """What ``create_demo_resources`` made: names, ARNs and where each color's game server is."""

    region: str
    service: str
    environment: str
    ssm_prefix: str
    task_family: str
    container_name: str
    desired_count: int
    task_definition_arn: str
    clusters: dict[Color, str]
    service_arns: dict[Color, str]
    target_group_arns: dict[Color, str]
    load_balancer_arn: str
    listener_arn: str
    urls: dict[Color, str]
    """The sample game server playing each color: the worker reaches the colors here."""
    alarm_names: list[str]
    """CloudWatch alarms watched during the bake: the data plane sets them from the load
    balancer's metrics (``local/data_plane/alarms.py``); ``set_alarm_state`` fires one by hand."""


def create_demo_resources(
    region: str,
    *,
    blue_url: str,
    green_url: str,
    service: str = "game",
    environment: str = "prod",
    desired_count: int = 2,
) -> DemoResources:
    """Blue active with ``desired_count`` tasks of version 1 (the local ECS stand-in runs them,
    ``local/data_plane/ecs_tasks.py``); green at zero, no traffic.

    >>> resources = create_demo_resources("us-west-2", blue_url=blue, green_url=green)
    >>> resources.clusters["green"]
    'game-prod-green'
    """
    name = f"{service}-{environment}"
    subnets, security_group, vpc_id = create_network(region)
    target_groups = _target_groups(region, name, vpc_id)
    load_balancer_arn, listener_arn = _load_balancer(region, name, subnets, target_groups)

    ecs: ECSClient = boto3.client("ecs", region_name=region)
    task_definition_arn = ecs.register_task_definition(
        family=service,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": service,
                "image": f"{service}:{INITIAL_VERSION}",
                "essential": True,
                "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    clusters: dict[Color, str] = {color: f"{name}-{color}" for color in COLORS}
    service_arns: dict[Color, str] = {}
    for color, cluster in clusters.items():
        ecs.create_cluster(clusterName=cluster)
        # Created at zero: moto reports a service created with tasks as IN_PROGRESS forever.
        service_arns[color] = ecs.create_service(
            cluster=cluster,
            serviceName=service,
            taskDefinition=task_definition_arn,
            desiredCount=0,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [security_group]}
            },
            loadBalancers=[
                {
                    "targetGroupArn": target_groups[color],
                    "containerName": service,
                    "containerPort": CONTAINER_PORT,
                }
            ],
        )["service"]["serviceArn"]
    # ...then scaled up, which moto turns into running == desired and a COMPLETED rollout.
    ecs.update_service(
        cluster=clusters["blue"],
        service=service,
        desiredCount=desired_count,
        taskDefinition=task_definition_arn,
    )

    ssm_prefix = f"/{service}/{environment}"
    ssm: SSMClient = boto3.client("ssm", region_name=region)
    for parameter, value in (("current_active_color", "blue"), ("blue/version", INITIAL_VERSION)):
        ssm.put_parameter(
            Name=f"{ssm_prefix}/{parameter}", Value=value, Type="String", Overwrite=True
        )

    alarm_names = [_error_alarm(region, name, load_balancer_arn)]

    return DemoResources(
        region=region,
        service=service,
        environment=environment,
        ssm_prefix=ssm_prefix,
        task_family=service,
        container_name=service,
        desired_count=desired_count,
        task_definition_arn=task_definition_arn,
        clusters=clusters,
        service_arns=service_arns,
        target_group_arns=target_groups,
        load_balancer_arn=load_balancer_arn,
        listener_arn=listener_arn,
        urls={"blue": blue_url, "green": green_url},
        alarm_names=alarm_names,
    )


def _error_alarm(region: str, name: str, load_balancer_arn: str) -> str:
    """An alarm on the load balancer's 5xx count, in OK: what a bake would watch.

    The data plane publishes the count from HAProxy's and evaluates the alarm every second
    (``local/data_plane/``): a bad version under load sends more than 10 5xx within a second
    or two, so a minute's period fires it as fast as a shorter one would; it only keeps the
    alarm in ALARM for a minute after the errors stop, as on AWS.
    """
    alarm_name = f"{name}-5xx"
    cloudwatch: CloudWatchClient = boto3.client("cloudwatch", region_name=region)
    cloudwatch.put_metric_alarm(
        AlarmName=alarm_name,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Dimensions=[
            {"Name": "LoadBalancer", "Value": load_balancer_arn.split(":loadbalancer/")[-1]}
        ],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue="OK", StateReason="demo start")
    return alarm_name


def create_network(region: str) -> tuple[list[str], str, str]:
    """Two subnets in two zones (an ALB needs them) and a security group: (subnets, group, vpc)."""
    ec2: Any = boto3.client("ec2", region_name=region)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate((f"{region}a", f"{region}b"), start=1)
    ]
    group = ec2.create_security_group(
        GroupName="game-tasks", Description="the game's tasks", VpcId=vpc_id
    )["GroupId"]
    return subnets, group, vpc_id


def _target_groups(region: str, name: str, vpc_id: str) -> dict[Color, str]:
    """One IP target group per color, empty: the local ECS stand-in registers each task once it
    answers its health check (``local/data_plane/ecs_tasks.py``), as ECS does in AWS.

    A deregistered task gets DEREGISTRATION_DELAY seconds before it is stopped (AWS's default
    is 300 s): enough for the load balancer to stop sending it anything new.
    """
    elbv2: ElasticLoadBalancingv2Client = boto3.client("elbv2", region_name=region)
    arns: dict[Color, str] = {}
    for color in COLORS:
        arns[color] = elbv2.create_target_group(
            Name=f"{name}-{color}",
            Protocol="HTTP",
            Port=CONTAINER_PORT,
            VpcId=vpc_id,
            TargetType="ip",
            HealthCheckPath="/health",
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arns[color],
            Attributes=[
                {
                    "Key": "deregistration_delay.timeout_seconds",
                    "Value": str(DEREGISTRATION_DELAY),
                }
            ],
        )
    return arns


def placeholder_targets(resources: DemoResources) -> None:
    """``desired_count`` targets in each color's target group, at addresses where nothing runs:
    for resources that no local ECS stand-in follows (the workflow tests on moto, the scale
    benchmark), whose health gate then passes as soon as ECS's counts do, moto reporting every
    registered target healthy."""
    elbv2: ElasticLoadBalancingv2Client = boto3.client("elbv2", region_name=resources.region)
    for offset, arn in enumerate(resources.target_group_arns.values(), start=1):
        elbv2.register_targets(
            TargetGroupArn=arn,
            Targets=[
                {"Id": f"10.0.{offset}.{10 + i}", "Port": CONTAINER_PORT}
                for i in range(resources.desired_count)
            ],
        )


def _load_balancer(
    region: str, name: str, subnets: list[str], target_groups: dict[Color, str]
) -> tuple[str, str]:
    """An ALB whose HTTP:80 listener sends all traffic to blue: (load balancer, listener)."""
    elbv2: ElasticLoadBalancingv2Client = boto3.client("elbv2", region_name=region)
    load_balancer = elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]
    weights: dict[Color, int] = {"blue": 100, "green": 0}
    listener = elbv2.create_listener(
        LoadBalancerArn=load_balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": target_groups[c], "Weight": weights[c]} for c in COLORS
                    ]
                },
            }
        ],
    )["Listeners"][0]
    return load_balancer["LoadBalancerArn"], listener["ListenerArn"]


ERROR_RATE_QUERY = (
    'sum(rate(haproxy_server_http_responses_total{proxy="tasks-{region}",server=~"{color}-.*",'
    'code="5xx"}[{window}])) / sum(rate(haproxy_server_http_responses_total{'
    'proxy="tasks-{region}",server=~"{color}-.*"}[{window}]))'
)
"""The new color's share of 5xx answers through the local HAProxy, as Prometheus scrapes it."""
REQUESTS_QUERY = (
    'sum(increase(haproxy_server_http_responses_total{proxy="tasks-{region}",'
    'server=~"{color}-.*"}[{window}]))'
)
"""The answers the new color gave in the window: the analysis's request count."""


def analysis_section(environment: str, prometheus_url: str) -> str:
    """The ``analysis`` tables of the demo's deploy.toml: the new color's 5xx share measured
    every second through Prometheus."""
    q = json.dumps
    return f"""
# The new color's share of 5xx answers, from Prometheus scraping HAProxy every second,
# measured every second from its first traffic through the bake. No data, and fewer than 20
# answers in the window, are inconclusive: never a pass, and more than 10 of them roll back.
[environments.{environment}.analysis]
prometheus_url = {q(prometheus_url)}

[[environments.{environment}.analysis.metrics]]
name = "error-rate"
provider = "prometheus"
query = {q(ERROR_RATE_QUERY)}
requests_query = {q(REQUESTS_QUERY)}
max = 0.05
window = "5s"
interval = "1s"
min_requests = 20
inconclusive_limit = 10
"""


def write_demo_config(
    path: Path,
    resources: DemoResources,
    *other_regions: DemoResources,
    prometheus_url: str | None = None,
    notify: str = "",
) -> DeployConfig:
    """Write the deploy.toml for ``resources`` to ``path``; returns it as ``load_config`` reads it.

    Short waits (a 1 s poll) so the demo is quick; the game servers' URLs as the colors' URLs.
    With ``other_regions`` the environment spans them too (``regions``, one wave): the keys
    describe ``resources``' region, and an ``in_region`` table per other region gives its own
    ARNs, game servers and alarms; cluster, service and SSM names are the same everywhere.
    With ``prometheus_url`` the new color is also judged by a metric analysis (every region's
    HAProxy is scraped by that one Prometheus). ``notify`` is TOML added to the environment: its
    notify tables (local/notify_receiver.py).
    """
    r = resources
    q = json.dumps  # a TOML basic string: JSON's escapes are TOML's
    color_sections = "".join(
        f"""
# The {color} color: its ECS service, its target group, and its game server on this machine.
[environments.{r.environment}.{color}]
cluster = {q(r.clusters[color])}
service = {q(r.service)}
target_group_arn = {q(r.target_group_arns[color])}
url = {q(r.urls[color])}
"""
        for color in COLORS
    )
    regions = ""
    if other_regions:
        listed = [r.region, *(other.region for other in other_regions)]
        regions = f"""# One wave: every region in parallel. The keys below describe {r.region}; the
# in_region tables at the end give what differs in each other region.
regions = {q(listed)}
"""
    text = f"""# Generated by local/aws_resources.py for the local environment (moto and the sample game
# service). See deploy.example.toml for every key and what it means.
service = {q(r.service)}

[environments.{r.environment}]
region = {q(r.region)}
{regions}# {r.ssm_prefix}/current_active_color and {r.ssm_prefix}/<color>/version
ssm_prefix = {q(r.ssm_prefix)}
task_family = {q(r.task_family)}
container_name = {q(r.container_name)}
desired_count = {r.desired_count}
{color_sections}
# All public traffic goes through this listener's weighted forward action.
[environments.{r.environment}.router]
kind = "alb"
listener_arn = {q(r.listener_arn)}

# moto answers at once: poll every second instead of the production default of 15 s.
[environments.{r.environment}.health]
timeout = "2m"
poll_interval = "1s"

# The demo's players finish their games within seconds of being told to reconnect.
[environments.{r.environment}.drain]
timeout = "2m"
poll_interval = "1s"

# Both colors run for a few seconds after the switch while the 5xx alarm is watched; an alarm
# in ALARM moves the traffic back to the old color.
[environments.{r.environment}.bake]
duration = "3s"
poll_interval = "1s"
alarms = {q(r.alarm_names)}

# The sample game service counts its players per client version and tells them to reconnect.
[environments.{r.environment}.connections]
url = "{{color_url}}/connections"
version_header = "X-Game-Version"
notify_url = "{{color_url}}/reconnect"

# Checked against the new color before it receives any traffic.
[[environments.{r.environment}.integration_checks]]
name = "health"
url = "{{color_url}}/health"
expected_status = 200
body_contains = "ok"
{analysis_section(r.environment, prometheus_url) if prometheus_url else ""}\
{notify}{"".join(_region_overrides(other) for other in other_regions)}"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _region_overrides(resources: DemoResources) -> str:
    """The ``in_region`` tables of one more region: its own ARNs, game servers and alarms."""
    r = resources
    q = json.dumps
    table = f"environments.{r.environment}.in_region.{r.region}"
    colors = "".join(
        f"""
[{table}.{color}]
target_group_arn = {q(r.target_group_arns[color])}
url = {q(r.urls[color])}
"""
        for color in COLORS
    )
    return f"""
# {r.region}: its own target groups, game servers, listener and 5xx alarm (alarm names are
# per region: the same name is another alarm here).{colors}
[{table}.router]
listener_arn = {q(r.listener_arn)}

[{table}.bake]
alarms = {q(r.alarm_names)}
"""
