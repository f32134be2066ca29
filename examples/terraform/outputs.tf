output "worker_role_arn" {
  description = "The role the worker runs as"
  value       = aws_iam_role.worker.arn
}

output "ssm_parameters" {
  description = "The parameters the deployments read and write"
  value = concat(
    [aws_ssm_parameter.active_color.name],
    [for color in sort(tolist(local.colors)) : aws_ssm_parameter.version[color].name],
  )
}

# The section of deploy.toml that describes what this created. Add the optional sections
# (health, drain, approval, bake, connections, integration_checks) and each color's url.
output "deploy_toml" {
  description = "The [environments.<name>] section of deploy.toml for these resources"
  value       = <<-TOML
    service = "${var.service}"

    [environments.${var.environment}]
    region = "${var.region}"
    ssm_prefix = "${var.ssm_prefix}"
    task_family = "${var.task_family}"
    container_name = "${var.container_name}"
    desired_count = ${var.desired_count}

    [environments.${var.environment}.blue]
    cluster = "${aws_ecs_cluster.color["blue"].name}"
    service = "${aws_ecs_service.color["blue"].name}"
    target_group_arn = "${aws_lb_target_group.color["blue"].arn}"

    [environments.${var.environment}.green]
    cluster = "${aws_ecs_cluster.color["green"].name}"
    service = "${aws_ecs_service.color["green"].name}"
    target_group_arn = "${aws_lb_target_group.color["green"].arn}"

    [environments.${var.environment}.router]
    kind = "alb"
    listener_arn = "${aws_lb_listener.public.arn}"
  TOML
}
