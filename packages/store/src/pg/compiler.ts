import {
  type ColumnDefinitionNode,
  type DataTypeNode,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresQueryCompiler,
  type QueryCompiler,
  RawNode,
} from 'kysely';

/**
 * The one place where the schema's column types differ between the engines. Migrations are written
 * once, in SQLite's terms; on PostgreSQL:
 * - `integer` is `bigint` (epoch milliseconds do not fit PostgreSQL's 32-bit integer);
 * - an auto-increment primary key is `bigserial`;
 * - `text` columns sort and compare byte-wise (`collate "C"`), as SQLite's do, so every list comes out
 *   in the same order on both engines.
 */
class SchemaCompiler extends PostgresQueryCompiler {
  protected override visitColumnDefinition(node: ColumnDefinitionNode): void {
    if (node.autoIncrement) {
      super.visitColumnDefinition({ ...node, autoIncrement: false, dataType: RawNode.createWithSql('bigserial') });
      return;
    }
    if (node.dataType.kind === 'DataTypeNode' && (node.dataType as DataTypeNode).dataType === 'text') {
      super.visitColumnDefinition({ ...node, dataType: RawNode.createWithSql('text collate "C"') });
      return;
    }
    super.visitColumnDefinition(node);
  }

  protected override visitDataType(node: DataTypeNode): void {
    if (node.dataType === 'integer') this.append('bigint');
    else super.visitDataType(node);
  }
}

/** PostgreSQL through Kysely's dialect, with the schema compiler above. */
export class PgCompilingDialect implements Dialect {
  constructor(private readonly inner: Dialect) {}

  createDriver(): Driver {
    return this.inner.createDriver();
  }

  createQueryCompiler(): QueryCompiler {
    return new SchemaCompiler();
  }

  createAdapter(): DialectAdapter {
    return this.inner.createAdapter();
  }

  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return this.inner.createIntrospector(db);
  }
}
