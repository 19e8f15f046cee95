variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the service."
}

variable "environment" {
  type        = string
  description = "Deployment environment, recorded as a label on the namespace."
}

variable "secret_key" {
  type        = string
  description = "Flask SECRET_KEY."
  sensitive   = true
}

variable "database_url" {
  type        = string
  description = "DATABASE_URL (postgresql://...) including the password."
  sensitive   = true
}

variable "redis_url" {
  type        = string
  description = "REDIS_URL (rediss://...) including the AUTH token."
  sensitive   = true
}

variable "celery_broker_url" {
  type        = string
  description = "CELERY_BROKER_URL including credentials."
  sensitive   = true
}

variable "celery_result_backend" {
  type        = string
  description = "CELERY_RESULT_BACKEND including credentials."
  sensitive   = true
}

variable "jwt_private_key_pem" {
  type        = string
  description = "PEM private key that signs JWTs; mounted into the pods as a file."
  sensitive   = true
}

variable "totp_encryption_keys" {
  type        = string
  description = "TOTP_ENCRYPTION_KEYS: comma-separated kid:base64key entries (keys of 32+ bytes); the first encrypts, all decrypt."
  sensitive   = true

  # The same rule as the root module's variable: the pods refuse anything else at start-up.
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9+/_-]{43,}={0,2}(,[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9+/_-]{43,}={0,2})*$", var.totp_encryption_keys))
    error_message = "totp_encryption_keys must be kid:base64key[,kid:base64key...] with keys of 32 or more bytes."
  }
}

variable "metrics_token" {
  type        = string
  description = "METRICS_TOKEN: bearer token that Prometheus sends to GET /metrics."
  sensitive   = true
}

variable "optional_app_secrets" {
  type        = map(string)
  description = "Secrets of optional features by environment variable name (SENDGRID_API_KEY, SMTP_PASSWORD, ...); empty values are left out."
  sensitive   = true
  default     = {}
}
