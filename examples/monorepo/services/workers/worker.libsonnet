// The task definition every worker shares: one container running `./worker NAME` from the
// workers image. Imported by each worker's ecs-task-def.jsonnet, so a change here touches
// them all (`cortado affected`).
function(name) {
  family: name,
  cpu: '256',
  memory: '512',
  networkMode: 'awsvpc',
  requiresCompatibilities: ['FARGATE'],
  executionRoleArn: 'arn:aws:iam::123456789012:role/%s-execution' % name,
  containerDefinitions: [
    {
      name: name,
      image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/workers:{{ env `IMAGE_TAG` `v1` }}',
      essential: true,
      environment: [
        { name: 'RELEASE', value: '{{ must_env `RELEASE` }}' },
      ],
      logConfiguration: {
        logDriver: 'awslogs',
        options: {
          'awslogs-group': '/ecs/' + name,
          'awslogs-region': 'us-east-1',
          'awslogs-stream-prefix': name,
        },
      },
      command: ['./worker', name],
    },
  ],
}
