// Writes on an Epoch branch through the PostgreSQL JDBC driver (pgjdbc).
//
//   java -cp <dir>:/usr/share/java/postgresql.jar BranchWrites <jdbc url> <user> <password>
//
// Run by tests/integration/test_branch_clients.py against the table
//   jitems (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL DEFAULT 0,
//           price numeric(10,2), tags text[], seen timestamptz)
// holding ids 1..100 on main (qty = id, price = id * 1.50), tracked, on a fresh branch.
// PreparedStatements run more than prepareThreshold (5) times, so the driver switches
// to named server-side statements; batches, generated keys, transactions, errors.
// Prints "ok <checks>" on success; exits 1 with the first failed check otherwise.
import java.math.BigDecimal;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.Properties;

public class BranchWrites {
    static int checks = 0;

    static void check(boolean ok, String what) {
        checks++;
        if (!ok) {
            System.out.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static long scalar(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            check(rs.next(), "a row from " + sql);
            return rs.getLong(1);
        }
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("prepareThreshold", "5");
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            run(c);
        }
        // the same again with batched inserts rewritten into multi-row VALUES
        props.setProperty("reWriteBatchedInserts", "true");
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO jitems (id, name, qty) VALUES (?, ?, ?)")) {
                for (int i = 0; i < 25; i++) {
                    ps.setInt(1, 3000 + i);
                    ps.setString(2, "rewritten " + i);
                    ps.setInt(3, i);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                for (int n : counts) {
                    // the driver reports SUCCESS_NO_INFO (-2) for rewritten batches
                    check(n == 1 || n == Statement.SUCCESS_NO_INFO, "rewritten batch count " + n);
                }
            }
            c.commit();
            check(scalar(c, "SELECT count(*) FROM jitems WHERE id BETWEEN 3000 AND 3024") == 25,
                  "25 rows from the rewritten batch");
            check(scalar(c, "SELECT sum(qty) FROM jitems WHERE id BETWEEN 3000 AND 3024") == 300,
                  "their qty");
            c.commit();
        }
        System.out.println("ok " + checks);
    }

    static void run(Connection c) throws Exception {
        c.setAutoCommit(false);
        check(scalar(c, "SELECT count(*) FROM jitems") == 100, "100 rows to start with");

        // INSERT, 12 times: named server-side statement from the 5th execution on
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT INTO jitems (id, name, qty, price, tags, seen) VALUES (?, ?, ?, ?, ?, ?)")) {
            for (int i = 0; i < 12; i++) {
                ps.setInt(1, 1000 + i);
                ps.setString(2, "jdbc " + i);
                ps.setInt(3, i);
                ps.setBigDecimal(4, new BigDecimal("2.25").multiply(BigDecimal.valueOf(i)));
                ps.setArray(5, c.createArrayOf("text", new String[] {"t" + i, "jdbc"}));
                ps.setTimestamp(6, Timestamp.valueOf("2024-05-0" + (1 + i % 9) + " 10:00:00"));
                check(ps.executeUpdate() == 1, "insert #" + i + " updates one row");
            }
        }
        // UPDATE, 12 times (one of them matches nothing)
        try (PreparedStatement ps = c.prepareStatement(
                "UPDATE jitems SET qty = qty + ?, price = price * ? WHERE id = ?")) {
            for (int i = 0; i < 12; i++) {
                ps.setInt(1, 10);
                ps.setBigDecimal(2, new BigDecimal("2"));
                ps.setInt(3, i == 11 ? 999999 : 1 + i);
                check(ps.executeUpdate() == (i == 11 ? 0 : 1), "update #" + i + " count");
            }
        }
        // SELECT, 12 times
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT qty, price, name FROM jitems WHERE id = ?")) {
            for (int i = 0; i < 12; i++) {
                ps.setInt(1, 1 + i);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "select #" + i + " finds the row");
                    int want = (1 + i) + (i == 11 ? 0 : 10);
                    check(rs.getInt(1) == want, "select #" + i + " qty " + rs.getInt(1) + " != " + want);
                    BigDecimal price = new BigDecimal("1.50").multiply(BigDecimal.valueOf(1 + i))
                            .multiply(i == 11 ? BigDecimal.ONE : new BigDecimal("2"));
                    check(rs.getBigDecimal(2).compareTo(price) == 0, "select #" + i + " price");
                    check(!rs.next(), "select #" + i + " one row");
                }
            }
        }
        // the rows inserted above, read back with their types
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT name, tags, seen FROM jitems WHERE id = ?")) {
            for (int i = 0; i < 12; i++) {
                ps.setInt(1, 1000 + i);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "inserted row " + i);
                    check(rs.getString(1).equals("jdbc " + i), "name of " + i);
                    Array tags = rs.getArray(2);
                    String[] t = (String[]) tags.getArray();
                    check(t.length == 2 && t[0].equals("t" + i), "tags of " + i);
                    check(rs.getTimestamp(3).equals(
                            Timestamp.valueOf("2024-05-0" + (1 + i % 9) + " 10:00:00")), "seen of " + i);
                }
            }
        }
        // DELETE, 12 times
        try (PreparedStatement ps = c.prepareStatement("DELETE FROM jitems WHERE id = ?")) {
            for (int i = 0; i < 12; i++) {
                ps.setInt(1, 50 + i);
                check(ps.executeUpdate() == 1, "delete #" + i);
            }
            ps.setInt(1, 50);
            check(ps.executeUpdate() == 0, "delete of a deleted row");
        }
        c.commit();
        check(scalar(c, "SELECT count(*) FROM jitems") == 100 + 12 - 12, "count after commit");

        // batches: inserts and updates
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT INTO jitems (id, name, qty) VALUES (?, ?, ?)")) {
            for (int i = 0; i < 20; i++) {
                ps.setInt(1, 2000 + i);
                ps.setString(2, "batch " + i);
                ps.setInt(3, i);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            check(counts.length == 20, "20 batch counts");
            for (int n : counts)
                check(n == 1, "batch insert count " + n);
        }
        try (PreparedStatement ps = c.prepareStatement(
                "UPDATE jitems SET name = name || ? WHERE id BETWEEN ? AND ?")) {
            int[][] ranges = {{2000, 2004}, {2005, 2009}, {1, 3}, {50, 52}, {2010, 2019}};
            for (int[] r : ranges) {
                ps.setString(1, "!");
                ps.setInt(2, r[0]);
                ps.setInt(3, r[1]);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            int[] want = {5, 5, 3, 0, 10};
            for (int i = 0; i < want.length; i++)
                check(counts[i] == want[i], "batch update count " + i + ": " + counts[i]);
        }
        // generated keys: the driver appends RETURNING *
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT INTO jitems (id, name) VALUES (?, ?)", Statement.RETURN_GENERATED_KEYS)) {
            for (int i = 0; i < 7; i++) {
                ps.setInt(1, 2500 + i);
                ps.setString(2, "gk " + i);
                check(ps.executeUpdate() == 1, "insert with generated keys");
                try (ResultSet rs = ps.getGeneratedKeys()) {
                    check(rs.next() && rs.getInt("id") == 2500 + i && rs.getInt("qty") == 0,
                          "generated keys row " + i);
                }
            }
        }
        try (PreparedStatement ps = c.prepareStatement(
                "UPDATE jitems SET qty = qty + 1 WHERE id = ? RETURNING id, qty")) {
            for (int i = 0; i < 7; i++) {
                ps.setInt(1, 2500 + i);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && rs.getInt(2) == 1, "update … returning " + i);
                }
            }
        }
        c.commit();
        check(scalar(c, "SELECT count(*) FROM jitems WHERE name LIKE '%!'") == 23,
              "23 names end in !");

        // rollback leaves nothing behind
        try (Statement st = c.createStatement()) {
            check(st.executeUpdate("DELETE FROM jitems WHERE id < 40") == 39, "delete 39");
            check(st.executeUpdate("INSERT INTO jitems (id, name) VALUES (5000, 'gone')") == 1,
                  "insert to roll back");
        }
        c.rollback();
        check(scalar(c, "SELECT count(*) FROM jitems WHERE id < 40 OR id = 5000") == 39,
              "rollback restored the rows");

        // a duplicate key: SQLState 23505, the transaction goes on after a rollback
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT INTO jitems (id, name) VALUES (?, ?)")) {
            ps.setInt(1, 1);
            ps.setString(2, "dup");
            try {
                ps.executeUpdate();
                check(false, "duplicate key accepted");
            } catch (SQLException e) {
                check("23505".equals(e.getSQLState()), "SQLState " + e.getSQLState());
            }
            c.rollback();
            ps.setInt(1, 5001);
            ps.setString(2, "after error");
            check(ps.executeUpdate() == 1, "insert after the error");
        }
        c.commit();

        // autocommit with a plain Statement (simple protocol for no parameters)
        c.setAutoCommit(true);
        try (Statement st = c.createStatement()) {
            check(st.executeUpdate("UPDATE jitems SET qty = 0 WHERE id >= 2000") == 20 + 7 + 1,
                  "update in autocommit");
        }
        check(scalar(c, "SELECT count(*) FROM jitems") == 100 + 20 + 7 + 1, "final count");
        check(scalar(c, "SELECT sum(qty) FROM jitems WHERE id < 1000") ==
              scalar(c, "SELECT sum(id) FROM jitems WHERE id < 1000") + 110, "final sum");
    }
}
