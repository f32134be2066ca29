# What differs between services and environments. The names must match deploy.toml: the
# outputs print the [environments.<name>] section that describes what this creates.

variable "region" {
  description = "AWS region of this environment (one region; see docs/terraform.md for several)"
  type        = string
}

variable "service" {
  description = "deploy.toml's service: the deployment ID is deploy-<service>-<environment>"
  type        = string
  default     = "game"
}

variable "environment" {
  description = "The environment's name in deploy.toml ([environments.<name>])"
  type        = string
  default     = "prod"
}

variable "ssm_prefix" {
  description = "deploy.toml's ssm_prefix: where the active color and the versions live"
  type        = string
  default     = "/game/prod"

  validation {
    condition     = can(regex("^/[A-Za-z0-9_.\\-/]*[A-Za-z0-9_.\\-]$", var.ssm_prefix))
    error_message = "ssm_prefix starts with / and does not end with one, e.g. /game/prod."
  }
}

variable "initial_active_color" {
  description = "The color that takes the traffic when this is first applied (blue or green)"
  type        = string
  default     = "blue"

  validation {
    condition     = contains(["blue", "green"], var.initial_active_color)
    error_message = "initial_active_color is blue or green."
  }
}

variable "initial_version" {
  description = "The version label of initial_image, recorded in SSM for both colors"
  type        = string
}

variable "initial_image" {
  description = "The image of the first task-definition revision; deployments replace it"
  type        = string
}

variable "task_family" {
  description = "deploy.toml's task_family"
  type        = string
  default     = "game"
}

variable "container_name" {
  description = "deploy.toml's container_name: the container whose image a deployment changes"
  type        = string
  default     = "game"
}

variable "container_port" {
  description = "The port the container serves on, registered in the target groups"
  type        = number
  default     = 8080
}

variable "task_cpu" {
  description = "Fargate CPU units of a task"
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate memory of a task, in MiB"
  type        = number
  default     = 1024
}

variable "task_role_arn" {
  description = "The task's own IAM role (the worker passes it on when it registers a revision)"
  type        = string
}

variable "task_execution_role_arn" {
  description = "The task execution role (pulls the image, writes logs)"
  type        = string
}

variable "desired_count" {
  description = "Tasks of the active color when first applied; deploy.toml's desired_count afterwards"
  type        = number
  default     = 2
}

variable "vpc_id" {
  description = "VPC of the target groups"
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks"
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks"
  type        = list(string)
}

variable "load_balancer_arn" {
  description = "An existing Application Load Balancer that receives the public traffic"
  type        = string
}

variable "listener_port" {
  description = "The public listener's port"
  type        = number
  default     = 443
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener; null for plain HTTP"
  type        = string
  default     = null
}

variable "health_check_path" {
  description = "The target groups' health check path"
  type        = string
  default     = "/health"
}

variable "worker_policy_path" {
  description = "Path of iam/worker-policy.json; null: this repository's copy, two levels up"
  type        = string
  default     = null
}
