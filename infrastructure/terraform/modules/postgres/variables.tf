variable "name" {
  type        = string
  description = "Identifier of the DB instance and prefix of its subnet, parameter and security groups."
}

variable "vpc_id" {
  type        = string
  description = "VPC that holds the database."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets (two or more availability zones) for the DB subnet group."

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "allowed_security_group_ids" {
  type        = list(string)
  description = "Security groups allowed to connect on the PostgreSQL port."
}

variable "engine_version" {
  type        = string
  description = "PostgreSQL engine version, e.g. 16 or 16.4."
}

variable "instance_class" {
  type        = string
  description = "RDS instance class, e.g. db.t4g.medium."
}

variable "allocated_storage_gb" {
  type        = number
  description = "Initial gp3 storage in GiB."
}

variable "max_allocated_storage_gb" {
  type        = number
  description = "Storage autoscaling ceiling in GiB (at least allocated_storage_gb)."
}

variable "multi_az" {
  type        = bool
  description = "Keep a synchronous standby in another availability zone."
}

variable "backup_retention_days" {
  type        = number
  description = "Days of automated backups (1-35)."
}

variable "deletion_protection" {
  type        = bool
  description = "Block deletion of the instance."
}

variable "database_name" {
  type        = string
  description = "Database created with the instance."
}

variable "master_username" {
  type        = string
  description = "Master user name."
}

variable "master_password" {
  type        = string
  description = "Master user password."
  sensitive   = true
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource of the module."
  default     = {}
}
