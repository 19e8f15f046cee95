variable "name" {
  type        = string
  description = "Replication group id and prefix of the module's other resources (lowercase, at most 40 characters)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.name)) && !endswith(var.name, "-")
    error_message = "name must be at most 40 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC that holds the replication group."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the cache subnet group (several availability zones for Multi-AZ)."
}

variable "allowed_security_group_ids" {
  type        = list(string)
  description = "Security groups allowed to connect on the Redis port."
}

variable "engine_version" {
  type        = string
  description = "Redis engine version, e.g. 7.1."
}

variable "node_type" {
  type        = string
  description = "ElastiCache node type, e.g. cache.t4g.small."
}

variable "num_cache_clusters" {
  type        = number
  description = "Number of nodes (primary plus replicas); 2 or more enables automatic failover and Multi-AZ."
}

variable "auth_token" {
  type        = string
  description = "Redis AUTH token (16-128 characters)."
  sensitive   = true

  validation {
    condition     = length(var.auth_token) >= 16 && length(var.auth_token) <= 128
    error_message = "auth_token must be 16 to 128 characters long."
  }
}

variable "snapshot_retention_days" {
  type        = number
  description = "Days of daily snapshots to keep (0 disables them)."
  default     = 3
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource of the module."
  default     = {}
}
