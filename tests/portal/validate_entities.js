// Validate Backstage catalog entities (JSON array on stdin) with @backstage/catalog-model's own policies
// and kind validators: the checks the Backstage catalog runs when it ingests catalog-info.yaml.
// Prints one line per problem; exit 1 when any entity is invalid.
const model = require('@backstage/catalog-model');

const policy = model.EntityPolicies.allOf([
  new model.DefaultNamespaceEntityPolicy(),
  new model.NoForeignRootFieldsEntityPolicy(),
  new model.FieldFormatEntityPolicy(),
  new model.SchemaValidEntityPolicy(),
]);
const kinds = {
  Component: model.componentEntityV1alpha1Validator,
  System: model.systemEntityV1alpha1Validator,
  Resource: model.resourceEntityV1alpha1Validator,
  API: model.apiEntityV1alpha1Validator,
};

async function main() {
  const entities = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  let bad = 0;
  for (const entity of entities) {
    const where = `${entity.kind}:${entity.metadata && entity.metadata.name}`;
    try {
      const enforced = await policy.enforce(entity);
      const validator = kinds[entity.kind];
      if (!validator) throw new Error(`unknown kind ${entity.kind}`);
      if (!(await validator.check(enforced))) throw new Error(`not a ${entity.kind}`);
      for (const ref of [entity.spec.owner, entity.spec.system, ...(entity.spec.dependsOn || [])]) {
        if (ref !== undefined) model.parseEntityRef(ref, { defaultKind: 'Group', defaultNamespace: 'default' });
      }
      console.log(`ok ${where}`);
    } catch (e) {
      bad += 1;
      console.log(`invalid ${where}: ${e.message}`);
    }
  }
  process.exit(bad ? 1 : 0);
}
main();
