# ---------------------------------------------------------------------------------------
# Where to deploy
# ---------------------------------------------------------------------------------------
variable "aws_region" {
  type        = string
  description = "AWS region of the EKS cluster, the database and Redis, e.g. eu-west-1."

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as eu-west-1."
  }
}

variable "environment" {
  type        = string
  description = "Deployment environment; part of every resource name and tag."

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "name" {
  type        = string
  description = "Base name of the service's AWS resources (suffixed with the environment)."
  default     = "auth-service"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name must be 3-30 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "eks_cluster_name" {
  type        = string
  description = "Name of the existing EKS cluster the service runs in; its VPC and cluster security group are used."

  validation {
    condition     = length(var.eks_cluster_name) > 0
    error_message = "eks_cluster_name must not be empty."
  }
}

variable "data_subnet_ids" {
  type        = list(string)
  description = "Private subnets (in at least two availability zones) of the cluster's VPC for PostgreSQL and Redis."

  validation {
    condition     = length(var.data_subnet_ids) >= 2
    error_message = "Give at least two subnets in different availability zones."
  }
}

variable "additional_client_security_group_ids" {
  type        = list(string)
  description = "Security groups besides the EKS cluster security group that may connect to PostgreSQL and Redis (e.g. node groups with custom security groups, a bastion)."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every AWS resource."
  default     = {}
}

# ---------------------------------------------------------------------------------------
# PostgreSQL (RDS)
# ---------------------------------------------------------------------------------------
variable "postgres_engine_version" {
  type        = string
  description = "PostgreSQL version for RDS. A major version alone (\"16\") lets RDS apply minor upgrades."
  default     = "16"

  validation {
    condition     = can(regex("^1[6-9](\\.[0-9]+)?$", var.postgres_engine_version))
    error_message = "postgres_engine_version must be PostgreSQL 16 or newer, e.g. 16 or 16.4."
  }
}

variable "postgres_instance_class" {
  type        = string
  description = "RDS instance class."
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.postgres_instance_class, "db.")
    error_message = "postgres_instance_class must be an RDS class such as db.t4g.medium."
  }
}

variable "postgres_allocated_storage_gb" {
  type        = number
  description = "Initial storage in GiB."
  default     = 20

  validation {
    condition     = var.postgres_allocated_storage_gb >= 20 && var.postgres_allocated_storage_gb <= 65536
    error_message = "postgres_allocated_storage_gb must be between 20 and 65536."
  }
}

variable "postgres_max_allocated_storage_gb" {
  type        = number
  description = "Upper bound for storage autoscaling in GiB; must be at least the initial storage."
  default     = 100
}

variable "postgres_multi_az" {
  type        = bool
  description = "Run a synchronous standby in a second availability zone."
  default     = true
}

variable "postgres_backup_retention_days" {
  type        = number
  description = "Days of automated backups and point-in-time recovery."
  default     = 7

  validation {
    condition     = var.postgres_backup_retention_days >= 1 && var.postgres_backup_retention_days <= 35
    error_message = "postgres_backup_retention_days must be between 1 and 35."
  }
}

variable "postgres_deletion_protection" {
  type        = bool
  description = "Refuse to delete the database instance until this is turned off."
  default     = true
}

variable "postgres_database" {
  type        = string
  description = "Name of the application database."
  default     = "auth"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.postgres_database))
    error_message = "postgres_database must be a lowercase PostgreSQL identifier."
  }
}

variable "postgres_username" {
  type        = string
  description = "Master user of the database, used by the service. Its password is generated."
  default     = "auth_service"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.postgres_username)) && !contains(["admin", "postgres", "rdsadmin"], var.postgres_username)
    error_message = "postgres_username must be a lowercase identifier other than admin, postgres or rdsadmin."
  }
}

# ---------------------------------------------------------------------------------------
# Redis (ElastiCache): rate limits, token blocklist, Celery broker and results
# ---------------------------------------------------------------------------------------
variable "redis_engine_version" {
  type        = string
  description = "Redis engine version for ElastiCache."
  default     = "7.1"

  validation {
    condition     = can(regex("^7\\.[0-9]+$", var.redis_engine_version))
    error_message = "redis_engine_version must be a Redis 7 version such as 7.1."
  }
}

variable "redis_node_type" {
  type        = string
  description = "ElastiCache node type."
  default     = "cache.t4g.small"

  validation {
    condition     = startswith(var.redis_node_type, "cache.")
    error_message = "redis_node_type must be an ElastiCache node type such as cache.t4g.small."
  }
}

variable "redis_num_cache_clusters" {
  type        = number
  description = "Nodes in the replication group (1 primary + replicas); 2 or more enables automatic failover."
  default     = 2

  validation {
    condition     = var.redis_num_cache_clusters >= 1 && var.redis_num_cache_clusters <= 6
    error_message = "redis_num_cache_clusters must be between 1 and 6."
  }
}

# ---------------------------------------------------------------------------------------
# Kubernetes and application secrets
# ---------------------------------------------------------------------------------------
variable "kubernetes_namespace" {
  type        = string
  description = "Namespace of the service; must match infrastructure/kubernetes (or the namespace given to scripts/deploy.sh)."
  default     = "auth-service"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.kubernetes_namespace))
    error_message = "kubernetes_namespace must be a DNS-1123 label."
  }
}

variable "jwt_private_key_pem" {
  type        = string
  description = "PEM private key that signs the service's JWTs (RSA for RS256, P-256 for ES256, Ed25519 for EdDSA); make the first one with `flask --app auth_microservice_app.app keys generate --out jwt-keys`."
  sensitive   = true

  validation {
    condition     = can(regex("-----BEGIN [A-Z ]*PRIVATE KEY-----", var.jwt_private_key_pem))
    error_message = "jwt_private_key_pem must be a PEM-encoded private key."
  }
}

variable "totp_encryption_keys" {
  type        = string
  description = "TOTP_ENCRYPTION_KEYS: comma-separated kid:base64key entries (each key 32+ random bytes, e.g. k1:$(openssl rand -base64 32)) that encrypt stored TOTP secrets; the first encrypts, all decrypt."
  sensitive   = true

  # The format utils/encryption.parse_key_ring accepts: a kid of letters, digits and _.-
  # (1-32), a colon, and base64 (standard or URL-safe, padding optional) of at least 32
  # bytes, which is 43 or more characters. A bare Fernet key has no kid and is refused.
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9+/_-]{43,}={0,2}(,[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9+/_-]{43,}={0,2})*$", var.totp_encryption_keys))
    error_message = "totp_encryption_keys must be kid:base64key[,kid:base64key...] with keys of 32 or more bytes, e.g. k1:$(openssl rand -base64 32); a Fernet key is not accepted."
  }

  # The service refuses to start while a setting still holds the templates' placeholder.
  validation {
    condition     = !can(regex("(^|[^a-z0-9])change_me([^a-z0-9]|$)", lower(var.totp_encryption_keys)))
    error_message = "totp_encryption_keys still holds the CHANGE_ME placeholder."
  }
}

variable "celery_broker_url" {
  type        = string
  description = "Celery broker URL (e.g. amqps:// of an Amazon MQ RabbitMQ broker). Empty uses database 1 of the ElastiCache Redis, so the Secret always carries a broker (staging and production refuse to start without one)."
  sensitive   = true
  default     = ""

  validation {
    condition     = !can(regex("(^|[^a-z0-9])change_me([^a-z0-9]|$)", lower(var.celery_broker_url)))
    error_message = "celery_broker_url still holds the CHANGE_ME placeholder."
  }
}

variable "optional_app_secrets" {
  type        = map(string)
  description = "Secrets of optional features, by environment variable name: SENDGRID_API_KEY, SMTP_PASSWORD, GOOGLE_CLIENT_SECRET, GITHUB_CLIENT_SECRET, APPLE_PRIVATE_KEY."
  sensitive   = true
  default     = {}

  validation {
    condition = alltrue([
      for key in keys(var.optional_app_secrets) :
      contains(["SENDGRID_API_KEY", "SMTP_PASSWORD", "GOOGLE_CLIENT_SECRET", "GITHUB_CLIENT_SECRET", "APPLE_PRIVATE_KEY"], key)
    ])
    error_message = "optional_app_secrets keys must be among SENDGRID_API_KEY, SMTP_PASSWORD, GOOGLE_CLIENT_SECRET, GITHUB_CLIENT_SECRET, APPLE_PRIVATE_KEY."
  }

  validation {
    condition     = alltrue([for value in values(var.optional_app_secrets) : !can(regex("(^|[^a-z0-9])change_me([^a-z0-9]|$)", lower(value)))])
    error_message = "optional_app_secrets holds a CHANGE_ME placeholder: set the real value or leave the key out."
  }
}
