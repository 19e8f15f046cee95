# The auth service on AWS: RDS PostgreSQL and ElastiCache Redis in the VPC of an existing
# EKS cluster, plus the Kubernetes namespace and the Secrets that connect the service to
# them. The workloads themselves (Deployments, Job, Service, HPA, PDB) are released with
# scripts/deploy.sh from infrastructure/kubernetes, so an image rollout never needs a
# Terraform run; Terraform owns what changes rarely and holds credentials.

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}

data "aws_eks_cluster" "this" {
  name = var.eks_cluster_name
}

# Short-lived tokens from the AWS CLI instead of a static kubeconfig or token in state.
provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", var.eks_cluster_name, "--region", var.aws_region]
  }
}

locals {
  name = "${var.name}-${var.environment}"

  tags = merge(var.tags, {
    Service     = var.name
    Environment = var.environment
    ManagedBy   = "terraform"
  })

  vpc_id = data.aws_eks_cluster.this.vpc_config[0].vpc_id

  # Pods on EKS managed node groups use the cluster security group; these may connect to
  # the database and Redis, nothing else.
  client_security_group_ids = concat(
    [data.aws_eks_cluster.this.vpc_config[0].cluster_security_group_id],
    var.additional_client_security_group_ids,
  )

  # TLS everywhere: rediss:// for ElastiCache (in-transit encryption is on), sslmode=require
  # for RDS (rds.force_ssl is on). Celery's redis transport insists on ssl_cert_reqs.
  redis_base_url        = "rediss://:${urlencode(random_password.redis_auth_token.result)}@${module.redis.primary_endpoint_address}:${module.redis.port}"
  redis_url             = "${local.redis_base_url}/0"
  celery_broker_url     = var.celery_broker_url != "" ? var.celery_broker_url : "${local.redis_base_url}/1?ssl_cert_reqs=required"
  celery_result_backend = "${local.redis_base_url}/2?ssl_cert_reqs=required"
  database_url          = "postgresql://${var.postgres_username}:${urlencode(random_password.postgres.result)}@${module.postgres.address}:${module.postgres.port}/${var.postgres_database}?sslmode=require"
}

# Generated credentials. They live in the Terraform state (hence the encrypted backend)
# and in the Kubernetes Secret; nobody needs to type them.
resource "random_password" "postgres" {
  length = 40
  # Only URL-unreserved symbols: the password goes into DATABASE_URL, and a percent-escape
  # there would also trip Alembic's config interpolation. RDS forbids / @ " and space.
  override_special = "-_.~"
}

resource "random_password" "redis_auth_token" {
  # ElastiCache AUTH tokens: 16-128 printable characters, a limited set of symbols.
  length  = 64
  special = false
}

resource "random_password" "secret_key" {
  length  = 64
  special = false
}

resource "random_password" "metrics_token" {
  length  = 48
  special = false
}

module "postgres" {
  source = "./modules/postgres"

  name                       = local.name
  vpc_id                     = local.vpc_id
  subnet_ids                 = var.data_subnet_ids
  allowed_security_group_ids = local.client_security_group_ids
  engine_version             = var.postgres_engine_version
  instance_class             = var.postgres_instance_class
  allocated_storage_gb       = var.postgres_allocated_storage_gb
  max_allocated_storage_gb   = var.postgres_max_allocated_storage_gb
  multi_az                   = var.postgres_multi_az
  backup_retention_days      = var.postgres_backup_retention_days
  deletion_protection        = var.postgres_deletion_protection
  database_name              = var.postgres_database
  master_username            = var.postgres_username
  master_password            = random_password.postgres.result
  tags                       = local.tags
}

module "redis" {
  source = "./modules/redis"

  name                       = local.name
  vpc_id                     = local.vpc_id
  subnet_ids                 = var.data_subnet_ids
  allowed_security_group_ids = local.client_security_group_ids
  engine_version             = var.redis_engine_version
  node_type                  = var.redis_node_type
  num_cache_clusters         = var.redis_num_cache_clusters
  auth_token                 = random_password.redis_auth_token.result
  tags                       = local.tags
}

module "app" {
  source = "./modules/app"

  namespace             = var.kubernetes_namespace
  environment           = var.environment
  secret_key            = random_password.secret_key.result
  database_url          = local.database_url
  redis_url             = local.redis_url
  celery_broker_url     = local.celery_broker_url
  celery_result_backend = local.celery_result_backend
  jwt_private_key_pem   = var.jwt_private_key_pem
  totp_encryption_keys  = var.totp_encryption_keys
  metrics_token         = random_password.metrics_token.result
  optional_app_secrets  = var.optional_app_secrets
}
