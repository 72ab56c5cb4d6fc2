// The jar variant of AML's "use Databricks as compute target": counts the words of <input>/testdata.txt and
// writes <output>/word_counts.csv. Hadoop's FileSystem API, so the same jar reads abfss:// URIs on a cluster
// and local paths under the local spark-submit.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

public class WordCount {
    public static void main(String[] args) throws Exception {
        String input = null;
        String output = null;
        int minCount = 1;
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals("--input")) input = args[i + 1];
            if (args[i].equals("--output")) output = args[i + 1];
            if (args[i].equals("--min-count")) minCount = Integer.parseInt(args[i + 1]);
        }
        if (input == null || output == null) throw new IllegalArgumentException("--input and --output are required");
        Configuration conf = new Configuration();
        Path source = new Path(input, "testdata.txt");
        TreeMap<String, Integer> counts = new TreeMap<>();
        try (BufferedReader reader = new BufferedReader(
                new InputStreamReader(source.getFileSystem(conf).open(source), StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                for (String word : line.split(" ")) counts.merge(word, 1, Integer::sum);
            }
        }
        Path target = new Path(output, "word_counts.csv");
        FileSystem fs = target.getFileSystem(conf);
        fs.setWriteChecksum(false);  // no .crc side files in the output (a cluster's ABFS writes none)
        int written = 0;
        try (Writer writer = new OutputStreamWriter(fs.create(target, true), StandardCharsets.UTF_8)) {
            writer.write("word,count\n");
            for (Map.Entry<String, Integer> entry : counts.entrySet()) {
                if (entry.getValue() >= minCount) {
                    writer.write(entry.getKey() + "," + entry.getValue() + "\n");
                    written++;
                }
            }
        }
        System.out.println("wrote " + written + " words");
    }
}
