# Terraform's side of one environment of a blue/green service: the two colors, the router, the
# SSM parameters the deployments read and write, and the worker's IAM role.
#
# Terraform creates these; the deployments (the worker) change some of them afterwards: SSM's
# active color and versions, each color's task definition and desired count, the listener's
# weights. Each of those attributes is under lifecycle.ignore_changes, or the next
# `terraform apply` would undo a deployment, moving traffic or scaling a color that serves
# players. docs/terraform.md explains each one.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

locals {
  colors = toset(["blue", "green"])
  name   = "${var.service}-${var.environment}"
}

# --- SSM Parameter Store: the truth the deployments and Terraform share --------------------------
#
# The worker reads all three at the start of every deployment, writes current_active_color at
# the switch and a color's version when it deploys to it (activities/ssm.py). Terraform only
# creates them: their values belong to the deployments from then on.

resource "aws_ssm_parameter" "active_color" {
  name        = "${var.ssm_prefix}/current_active_color"
  description = "The color that takes the traffic of ${local.name}: blue or green"
  type        = "String"
  value       = var.initial_active_color

  lifecycle {
    ignore_changes = [value]
  }
}

resource "aws_ssm_parameter" "version" {
  for_each = local.colors

  name        = "${var.ssm_prefix}/${each.key}/version"
  description = "The version ${each.key} of ${local.name} runs"
  type        = "String"
  # Both colors start on the same task-definition revision (the inactive one at zero tasks).
  value = var.initial_version

  lifecycle {
    ignore_changes = [value]
  }
}

# --- The task definition: a deployment registers a copy of the family's latest revision --------
#
# Terraform owns the family's settings (CPU, memory, roles, ports); each deployment copies the
# latest revision with its own image in container_name. A change here therefore reaches
# production at the next deployment, with that deployment's image.

resource "aws_ecs_task_definition" "service" {
  family                   = var.task_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  task_role_arn            = var.task_role_arn
  execution_role_arn       = var.task_execution_role_arn

  container_definitions = jsonencode([
    {
      name         = var.container_name
      image        = var.initial_image
      essential    = true
      portMappings = [{ containerPort = var.container_port, protocol = "tcp" }]
    }
  ])

  # A replaced revision stays registered: a color may still run it.
  skip_destroy = true
}

# The family's latest ACTIVE revision: the one Terraform registered, or a newer one a
# deployment registered since.
data "aws_ecs_task_definition" "latest" {
  task_definition = aws_ecs_task_definition.service.family
}

# --- Two colors: each its own ECS service in its own cluster -----------------------------------

resource "aws_ecs_cluster" "color" {
  for_each = local.colors

  name = "${local.name}-${each.key}"
}

resource "aws_lb_target_group" "color" {
  for_each = local.colors

  name        = "${local.name}-${each.key}"
  port        = var.container_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path    = var.health_check_path
    matcher = "200"
  }
}

resource "aws_ecs_service" "color" {
  for_each = local.colors

  name            = var.service
  cluster         = aws_ecs_cluster.color[each.key].id
  launch_type     = "FARGATE"
  task_definition = data.aws_ecs_task_definition.latest.arn
  # The active color runs; the other waits at zero for the next deployment.
  desired_count = each.key == var.initial_active_color ? var.desired_count : 0

  network_configuration {
    subnets         = var.subnet_ids
    security_groups = var.security_group_ids
  }

  # Health needs desired_count healthy targets in the color's own target group.
  load_balancer {
    target_group_arn = aws_lb_target_group.color[each.key].arn
    container_name   = var.container_name
    container_port   = var.container_port
  }

  lifecycle {
    # A deployment points the new color at a new revision and scales it up, then scales the
    # old color to zero: both are the deployments' to change, never Terraform's.
    ignore_changes = [desired_count, task_definition]
  }

  # A target group must be attached to a listener before a service can use it.
  depends_on = [aws_lb_listener.public]
}

# --- The router: the ALB listener's weighted forward to the two target groups -------------------

data "aws_lb" "public" {
  arn = var.load_balancer_arn
}

resource "aws_lb_listener" "public" {
  load_balancer_arn = data.aws_lb.public.arn
  port              = var.listener_port
  protocol          = var.certificate_arn == null ? "HTTP" : "HTTPS"
  certificate_arn   = var.certificate_arn
  ssl_policy        = var.certificate_arn == null ? null : "ELBSecurityPolicy-TLS13-1-2-2021-06"

  default_action {
    type = "forward"

    # Both target groups in one forward action, with weights: the switch sets them to 100/0.
    forward {
      target_group {
        arn    = aws_lb_target_group.color["blue"].arn
        weight = var.initial_active_color == "blue" ? 100 : 0
      }
      target_group {
        arn    = aws_lb_target_group.color["green"].arn
        weight = var.initial_active_color == "green" ? 100 : 0
      }
    }
  }

  lifecycle {
    # The weights are where the traffic is: after a deployment they no longer match the
    # configuration above, and applying it would send the players back to the old color.
    ignore_changes = [default_action]
  }
}

# --- The worker's IAM role, with the policy from iam/worker-policy.json ------------------------

locals {
  worker_policy_path = coalesce(var.worker_policy_path, "${path.module}/../../iam/worker-policy.json")

  # Each YOUR_* placeholder of the policy file replaced by this environment's own name.
  worker_policy_filled = replace(replace(replace(replace(replace(replace(replace(
    file(local.worker_policy_path),
    "YOUR_TASK_FAMILY", var.task_family),
    "YOUR_BLUE_CLUSTER", aws_ecs_cluster.color["blue"].name),
    "YOUR_GREEN_CLUSTER", aws_ecs_cluster.color["green"].name),
    "arn:aws:iam::*:role/YOUR_TASK_ROLE", var.task_role_arn),
    "arn:aws:iam::*:role/YOUR_TASK_EXECUTION_ROLE", var.task_execution_role_arn),
    "YOUR_PREFIX", trimprefix(var.ssm_prefix, "/")),
    "YOUR_LOAD_BALANCER", data.aws_lb.public.name
  )

  # This environment routes with the ALB: the App Mesh statement (YOUR_MESH) is left out.
  worker_policy_document = jsondecode(local.worker_policy_filled)
  worker_policy = jsonencode(merge(local.worker_policy_document, {
    Statement = [
      for statement in local.worker_policy_document.Statement : statement
      if statement.Sid != "WeightAppMeshRoutes"
    ]
  }))
}

# The worker runs as an ECS task here; for EC2 or EKS, change who may assume the role.
data "aws_iam_policy_document" "worker_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "worker" {
  name               = "${local.name}-bluegreen-worker"
  assume_role_policy = data.aws_iam_policy_document.worker_assume.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "bluegreen-deployments"
  role   = aws_iam_role.worker.id
  policy = local.worker_policy
}
